"""Keeping data alive (issue 3): supplier monitoring, audits, automatic
rebuild, background deletes.  Real swarm on 127.0.0.1, real mount, ec 4+2,
small blocks (256K) so that a few MiB make many blocks, and timings in
seconds instead of minutes.

Every wait polls `peerfs status --json` and fails with the last status and
the tail of mount.log when its deadline passes."""

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import data_block_ids, fragment_files, flip_bytes, run_peerfs

BS = "256K"
BSN = 256 * 1024
EC = "4+2"
N = 6                                   # k + m

# --ping-interval 300ms --suspect-after 1s --dead-after 3s --audit-interval 5s
def timings(ping="300ms", suspect="1s", dead="3s", audit="5s", rate=None, jobs=None):
    out = ["--ping-interval", ping, "--suspect-after", suspect,
           "--dead-after", dead, "--audit-interval", audit]
    if rate is not None:
        out += ["--rebuild-rate", rate]
    if jobs is not None:
        out += ["--rebuild-jobs", str(jobs)]
    return out


# -- helpers ---------------------------------------------------------------

def make_tree(root, seed, sizes):
    """Random files (no two blocks alike: nothing dedups) under root;
    returns the list of relative paths."""
    rnd = random.Random(seed)
    names = []
    for i, size in enumerate(sizes):
        rel = Path(f"d{i % 3}") / f"f{i}.bin" if i % 2 else Path(f"f{i}.bin")
        p = Path(root) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(size))
        names.append(rel)
    return names


def copy_tree(src, dst):
    cp = subprocess.run(["cp", "-a", str(src), str(dst)], capture_output=True,
                        text=True, timeout=300)
    assert cp.returncode == 0, f"cp -a {src} {dst}: {cp.stderr[-2000:]}"


def diff_tree(a, b, timeout=300):
    try:
        cp = subprocess.run(["diff", "-r", "--no-dereference", str(a), str(b)],
                            capture_output=True, text=True, errors="replace",
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"diff -r {a} {b} did not finish in {timeout} s", pytrace=False)
    assert cp.returncode == 0, \
        f"diff -r {a} {b} exited {cp.returncode}:\n{cp.stdout[:3000]}{cp.stderr[:3000]}"


def brief(st):
    """The parts of a status worth printing in a failure message."""
    out = {k: v for k, v in st.items() if k != "suppliers"}
    out["suppliers"] = [
        {k: s.get(k) for k in ("address", "state", "score", "placed_fragments",
                               "fragments", "audits_ok", "audits_failed",
                               "bad_fragments", "last_error") if k in s}
        for s in st.get("suppliers", [])]
    return json.dumps(out, indent=1, sort_keys=True)


def wait_status(m, pred, timeout, what, interval=0.5, also=None):
    """Polls status until pred(status) is true; returns that status.
    also(status) is called on every poll (to check an invariant)."""
    end = time.monotonic() + timeout
    while True:
        st = m.status_json()
        if also is not None:
            also(st)
        if pred(st):
            return st
        if time.monotonic() > end:
            pytest.fail(f"{what}: not reached within {timeout} s\nlast status:\n"
                        f"{brief(st)}\nmount.log tail:\n{m.log_tail(40)}",
                        pytrace=False)
        time.sleep(interval)


def by_index(sw, st):
    """{swarm index: supplier entry of the status}."""
    out = {}
    for s in st["suppliers"]:
        i = sw.index_of(s["address"])
        if i is not None:
            out[i] = s
    return out


def holders(sw, st):
    """Swarm indices of suppliers holding our fragments, most first."""
    idx = by_index(sw, st)
    hold = [i for i, s in idx.items() if s.get("placed_fragments", 0) > 0]
    return sorted(hold, key=lambda i: -idx[i]["placed_fragments"])


def all_full(st):
    b = st["blocks"]
    return b["total"] > 0 and b["full"] == b["total"] and b["pending"] == 0 \
        and b["degraded"] == 0 and b["lost"] == 0


def rebuild_queue(st):
    """Blocks in the rebuild queue."""
    return st["rebuild"]["queued"]


def rebuild_done(st):
    """Fragments rebuilt since the mount started."""
    return st["rebuild"]["fragments"]


def settled(st):
    """Full redundancy, nothing to rebuild and nothing queued."""
    return all_full(st) and st["blocks"].get("needs_rebuild", 0) == 0 \
        and rebuild_queue(st) == 0


def redundancy(path):
    return os.getxattr(str(path), "user.peerfs.redundancy").decode(errors="replace")


def check_redundancy(m, names, want="6/6"):
    bad = {str(n): redundancy(m.path / "tree" / n) for n in names}
    bad = {n: r for n, r in bad.items() if r.strip("\0 \n") != want}
    assert not bad, f"user.peerfs.redundancy is not {want!r}: {bad}"


def disk_fragments(sw, indices=None):
    return sum(len(fragment_files(sw.stores[i]))
               for i in (range(sw.n) if indices is None else indices))


def prepare(make_swarm, make_mount, tmp_path, n=8, sizes=None, extra=None,
            extra_for=None, seed=1):
    """n suppliers, a mount with 256K blocks and ec 4+2, a tree written
    and synced (reference copy in tmp_path/ref). Returns (sw, m, names)."""
    sw = make_swarm(n, extra_for=extra_for) if extra_for else make_swarm(n)
    m = make_mount().init()
    m.mount(sw.peers, ec=EC, block_size=BS, extra=extra or timings())
    ref = tmp_path / "ref"
    names = make_tree(ref, seed, sizes or
                      [1 << 20, 1_500_000, 700_000, 3 * BSN + 17, 64 << 10, 5000])
    copy_tree(ref, m.path / "tree")
    m.sync()
    wait_status(m, all_full, 30, "every block stored at 6/6 after sync")
    return sw, m, names


def cold_compare(m, tmp_path):
    m.drop_cache()
    diff_tree(tmp_path / "ref", m.path / "tree")


# -- tests -----------------------------------------------------------------

def test_rebuild_after_two_deaths(make_swarm, make_mount, tmp_path):
    sw, m, names = prepare(make_swarm, make_mount, tmp_path)
    st = st0 = m.status_json()
    check_redundancy(m, names)
    hold = holders(sw, st)
    assert len(hold) >= N, f"fragments on fewer than 6 suppliers:\n{brief(st)}"
    killed = hold[:2]
    for i in killed:
        sw.kill(i)
    t0 = time.monotonic()

    def dead_and_full(st):
        idx = by_index(sw, st)
        return all(idx[i]["state"] == "dead" for i in killed) and settled(st) \
            and all(idx[i].get("placed_fragments", 0) == 0 for i in killed)

    st = wait_status(m, dead_and_full, 60,
                     f"suppliers {killed} dead and every block back at 6/6")
    took = time.monotonic() - t0
    print(f"back to 6/6 {took:.1f} s after killing {killed}")
    assert took >= 2.5, f"rebuilt after {took:.1f} s, before --dead-after 3s"
    check_redundancy(m, names)
    idx = by_index(sw, st)
    for i in set(range(sw.n)) - set(killed):
        assert idx[i]["state"] in ("online", "spare"), brief(st)
    assert rebuild_done(st) >= sum(by_index(sw, st0)[i]["placed_fragments"]
                                   for i in killed), \
        f"fewer fragments rebuilt than the dead held:\n{brief(st)}"

    # Two more of the original suppliers go: 4 left, each block readable
    # only when its fragments really were rebuilt on the survivors.
    more = [i for i in holders(sw, st) if i not in killed][:2]
    assert len(more) == 2, brief(st)
    for i in more:
        sw.kill(i)
    cold_compare(m, tmp_path)


def test_dead_supplier_back_is_a_source_of_last_resort(make_swarm, make_mount,
                                                      tmp_path):
    """A supplier declared dead for an absence stays dead when it returns
    (nothing new goes there), yet its fragments are still read to rebuild
    blocks whose other holders are gone too: three holders of a block die
    at once (4+2: 3 of 6 left, the block is lost by the others alone), one
    of them comes back, and every block is rebuilt on the survivors."""
    sw, m, names = prepare(make_swarm, make_mount, tmp_path, n=9)
    # Three holders of one data block (fragment files: <block id><index>).
    data = data_block_ids(m.home)
    on = {}
    for i in range(sw.n):
        for f in sw.fragment_files(i):
            if f.name[:64] in data:
                on.setdefault(f.name[:64], set()).add(i)
    block, where = next((b, sorted(w)) for b, w in sorted(on.items())
                        if len(w) >= 3)
    gone, back = where[:2], where[2]
    pid = sw.procs[back].pid
    os.kill(pid, signal.SIGSTOP)        # away: no answer, no FIN
    try:
        for i in gone:
            sw.kill(i)

        def all_dead_some_lost(st):
            idx = by_index(sw, st)
            return all(idx[i]["state"] == "dead" for i in gone + [back]) \
                and st["blocks"]["lost"] > 0
        wait_status(m, all_dead_some_lost, 60,
                    f"suppliers {gone} and {back} dead, block {block[:16]} "
                    "and maybe others lost without them")
    finally:
        os.kill(pid, signal.SIGCONT)

    def back_and_settled(st):
        idx = by_index(sw, st)
        return settled(st) and all(idx[i].get("placed_fragments", 0) == 0
                                   for i in gone + [back])
    st = wait_status(m, back_and_settled, 120,
                     f"every block back at 6/6 with supplier {back}'s help")
    assert by_index(sw, st)[back]["state"] == "dead", brief(st)
    assert "reconnected; stays dead" in m.log_text()
    check_redundancy(m, names)
    # Its copies were sources only: without it, everything still reads.
    sw.kill(back)
    cold_compare(m, tmp_path)


def test_flipped_fragments_found_and_repaired(make_swarm, make_mount, tmp_path):
    # Background audits slow (1h a pass): `peerfs check` is what finds them.
    sw, m, names = prepare(make_swarm, make_mount, tmp_path,
                           extra=timings(audit="1h"))
    st = m.status_json()
    b_vic, a_vic = holders(sw, st)[:2]

    def flip_all(i, seed):
        files = fragment_files(sw.stores[i])
        assert files, f"supplier {i} holds no fragment file on disk"
        return {f: flip_bytes(f, seed=seed + j) for j, f in enumerate(files)}

    # 1. Bit rot on supplier B, nothing reads it: the audit of `peerfs
    # check` has to find every flipped fragment (as bad, or as missing once
    # B is fired for them) and have it rebuilt.
    corrupt = flip_all(b_vic, 0)
    assert rebuild_done(m.status_json()) == 0
    cp = run_peerfs(["check", m.path], timeout=180)
    out = cp.stdout + cp.stderr
    print(out)
    assert cp.returncode == 0, \
        f"peerfs check exited {cp.returncode}:\n{out[-3000:]}\n{m.log_tail(40)}"
    assert "result: full redundancy" in out, out
    line = [l for l in out.splitlines() if sw.address(b_vic) in l]
    assert line, f"check names no problem on supplier {b_vic}:\n{out}"
    got = re.search(r"(\d+) bad, (\d+) missing", line[0])
    assert got, line[0]
    assert int(got[1]) >= min(3, len(corrupt)), \
        f"{len(corrupt)} fragments flipped on {sw.address(b_vic)}:\n{out}"
    assert int(got[1]) + int(got[2]) >= len(corrupt), \
        f"{len(corrupt)} fragments flipped on {sw.address(b_vic)}:\n{out}"
    rebuilt = re.search(r"fragments rebuilt: (\d+)", out)
    assert rebuilt and int(rebuilt[1]) >= len(corrupt), out
    st = wait_status(m, settled, 30, "every block at 6/6 after peerfs check")
    s = by_index(sw, st)[b_vic]
    assert s["audits_failed"] > 0, \
        f"supplier {b_vic} corrupt but no failed audit:\n{brief(st)}"
    assert st["audit"]["failed"] > 0, brief(st)

    # 2. Bit rot on supplier A: a cold read is still correct (hashes
    # checked, other fragments used), the bad fragments get rebuilt.
    more = flip_all(a_vic, 1000)
    corrupt.update(more)
    cold_compare(m, tmp_path)
    cp = run_peerfs(["check", m.path], timeout=180)
    assert cp.returncode == 0 and "result: full redundancy" in cp.stdout, \
        cp.stdout + cp.stderr
    st = wait_status(m, settled, 60, "every block at 6/6 after the second check")
    check_redundancy(m, names)
    s = by_index(sw, st)[a_vic]
    assert s["audits_failed"] + s["bad_fragments"] > 0, \
        f"supplier {a_vic} corrupt but no failed audit nor bad fragment:\n{brief(st)}"

    # Every flipped fragment was found: once repaired it is no longer
    # referenced there and gets deleted, or it was stored again intact.
    def leftover():
        return [f for f, bad in corrupt.items()
                if f.exists() and f.read_bytes() == bad]
    end = time.monotonic() + 30
    while leftover() and time.monotonic() < end:
        time.sleep(0.5)
    left = leftover()
    assert not left, f"{len(left)} of {len(corrupt)} flipped fragments still " \
        f"there after check: {[str(f) for f in left[:5]]}\n{m.log_tail(40)}"

    # And the data really is whole again: with two other suppliers gone,
    # every block needs the repaired fragments.
    others = [i for i in holders(sw, st) if i not in (a_vic, b_vic)][:2]
    for i in others:
        sw.kill(i)
    cold_compare(m, tmp_path)


def test_lying_supplier_fired(make_swarm, make_mount, tmp_path):
    liar = 0
    sw, m, names = prepare(make_swarm, make_mount, tmp_path,
                           extra=timings(audit="2s"),
                           extra_for={liar: ["--test-lie"]})
    st = m.status_json()
    assert by_index(sw, st)[liar].get("placed_fragments", 0) > 0, \
        f"the lying supplier got no fragment:\n{brief(st)}"

    # Readers never see a forged byte, before or after it is found out.
    def fired(st):
        return by_index(sw, st)[liar]["state"] == "dead"
    end = time.monotonic() + 60
    reads = 0
    while True:
        cold_compare(m, tmp_path)
        reads += 1
        st = m.status_json()
        if fired(st):
            break
        assert time.monotonic() < end, \
            f"lying supplier not fired after 60 s ({reads} cold reads):\n" \
            f"{brief(st)}\n{m.log_tail(40)}"
        time.sleep(0.5)
    s = by_index(sw, st)[liar]
    best = max(x["score"] for i, x in by_index(sw, st).items() if i != liar)
    assert s["score"] < best, f"liar's score is not the lowest:\n{brief(st)}"
    assert s["audits_failed"] + s["bad_fragments"] > 0, brief(st)

    st = wait_status(m, lambda st: settled(st) and
                     by_index(sw, st)[liar].get("placed_fragments", 0) == 0,
                     60, "blocks rebuilt away from the lying supplier")
    check_redundancy(m, names)
    cold_compare(m, tmp_path)
    # Its fragments really are elsewhere: without it and one more supplier
    # everything still reads.
    sw.kill(liar)
    sw.kill(holders(sw, st)[0])
    cold_compare(m, tmp_path)


def test_restart_within_grace_no_rebuild(make_swarm, make_mount, tmp_path):
    sw, m, names = prepare(make_swarm, make_mount, tmp_path,
                           extra=timings(suspect="1s", dead="6s", audit="1h"))
    st0 = m.status_json()
    victim = holders(sw, st0)[0]
    placed0 = {i: s.get("placed_fragments") for i, s in by_index(sw, st0).items()}
    seen = set()

    def never_dead(st):
        s = by_index(sw, st)[victim]
        seen.add(s["state"])
        assert s["state"] != "dead", \
            f"supplier {victim} declared dead within the grace period:\n{brief(st)}"
        q, done = rebuild_queue(st), rebuild_done(st)
        assert not q and not done, f"a rebuild started:\n{brief(st)}"

    t0 = time.monotonic()
    sw.stop(victim)
    while time.monotonic() - t0 < 2:
        never_dead(m.status_json())
        time.sleep(0.3)
    sw.start(victim)
    wait_status(m, lambda st: by_index(sw, st)[victim]["state"] == "online",
                20, f"supplier {victim} online again", interval=0.3, also=never_dead)
    # Past the moment it would have been dead had it stayed away.
    while time.monotonic() - t0 < 8:
        never_dead(m.status_json())
        time.sleep(0.5)
    st = m.status_json()
    never_dead(st)
    assert all_full(st), brief(st)
    placed = {i: s.get("placed_fragments") for i, s in by_index(sw, st).items()}
    # Nothing moved away from anyone (new blocks, e.g. index segments, may
    # have been placed meanwhile).
    assert all(placed[i] >= placed0[i] for i in placed0), \
        f"fragments moved: {placed0} -> {placed}"
    assert st["rebuild"]["blocks"] == 0 and st["rebuild"]["bytes"] == 0, brief(st)
    check_redundancy(m, names)
    print("states seen:", sorted(seen))


def test_rebuild_resumes_after_umount(make_swarm, make_mount, tmp_path):
    extra = timings(dead="2s", audit="1h", rate="512K", jobs=1)
    sw, m, names = prepare(make_swarm, make_mount, tmp_path, extra=extra,
                           sizes=[3 << 20, 2 << 20, 2 << 20, 1 << 20], seed=5)
    st = m.status_json()
    victim = holders(sw, st)[0]
    placed0 = by_index(sw, st)[victim]["placed_fragments"]
    sw.kill(victim)

    # Wait until the rebuild is under way, but not finished.
    def midway(st):
        s = by_index(sw, st)[victim]
        return s["state"] == "dead" and 0 < s.get("placed_fragments", 0) < placed0
    end = time.monotonic() + 40
    while True:
        st = m.status_json()
        if midway(st):
            break
        assert not settled(st) or by_index(sw, st)[victim]["state"] != "dead", \
            f"rebuild finished before it could be interrupted (too fast for " \
            f"--rebuild-rate 256K?):\n{brief(st)}"
        assert time.monotonic() < end, \
            f"no rebuild progress 40 s after killing {victim}:\n{brief(st)}\n" \
            f"{m.log_tail(40)}"
        time.sleep(0.2)
    left_before = by_index(sw, st)[victim]["placed_fragments"]
    reds = {str(n): redundancy(m.path / "tree" / n).strip("\0 \n") for n in names}
    print("redundancy mid-rebuild:", reds)
    odd = {n: r for n, r in reds.items() if not re.fullmatch(r"6/6|5/6 rebuilding", r)}
    assert not odd, f"user.peerfs.redundancy mid-rebuild: {odd}"
    print(f"umount with {left_before} of {placed0} fragments still to rebuild")
    m.umount(timeout=120)
    m.mount(sw.peers, ec=EC, block_size=BS, extra=extra)
    st = m.status_json()
    if settled(st):
        pytest.fail("umount finished the rebuild instead of interrupting it "
                    f"(everything at 6/6 right after the remount):\n{brief(st)}",
                    pytrace=False)
    wait_status(m, lambda st: settled(st) and
                by_index(sw, st)[victim].get("placed_fragments", 0) == 0,
                90, "rebuild finished after the remount")
    check_redundancy(m, names)
    cold_compare(m, tmp_path)


def test_deleted_files_free_supplier_space(make_swarm, make_mount, tmp_path):
    sw, m, names = prepare(make_swarm, make_mount, tmp_path, n=6,
                           extra=timings(audit="1h"))
    before = disk_fragments(sw)
    st = m.status_json()
    total0 = st["blocks"]["total"]
    assert before >= N * total0, f"{before} fragment files for {total0} blocks"
    keep = names[0]
    for n in names[1:]:
        os.unlink(m.path / "tree" / n)
    m.sync()
    st = wait_status(m, lambda st: st["blocks"]["total"] < total0, 30,
                     "blocks of deleted files forgotten")
    # Every fragment of a forgotten block goes; a little slack for what
    # else the owner may store meanwhile (index segments).
    want = before - N * (total0 - st["blocks"]["total"]) + 2 * N

    def awaiting(st):
        return st["deletes"]["bytes"]

    end = time.monotonic() + 45
    while disk_fragments(sw) > want and time.monotonic() < end:
        time.sleep(0.5)
    after = disk_fragments(sw)
    assert after <= want, \
        f"{after} fragment files left on suppliers (was {before}); want <= " \
        f"{want}: {total0 - st['blocks']['total']} blocks forgotten\n{m.log_tail(30)}"
    # What the suppliers say and the queue of deletes agree, soon.
    st = wait_status(m, lambda st: sum(s["fragments"] for s in st["suppliers"]) <= want
                     and awaiting(st) == 0 and st["deletes"]["pending"] == 0, 20,
                     "suppliers report the deletes and nothing awaits deletion")
    m.drop_cache()
    assert (m.path / "tree" / keep).read_bytes() == (tmp_path / "ref" / keep).read_bytes()
