"""Crash safety (issue "Nothing lost", section 2).

kill -9 of the mount daemon during `cp -a` and explicit fsyncs, kill -9 of
suppliers during uploads, the orphan sweep, and ENOSPC from a full disk or
a full LMDB map.  Random moments come from a seed printed by each test, so
a failure can be replayed (PEERFS_CRASH_SEEDS="7 8 9" picks the seeds).
"""

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import (data_block_ids, drop_kernel_cache, run_with_timeout,
                      wait_for)

SEEDS = [int(s) for s in os.environ.get("PEERFS_CRASH_SEEDS",
                                        "1 2 3").split()]
SRC_DIRS = ["/usr/include/linux", "/usr/include/openssl",
            "/usr/include/python3.11", "/usr/include/x86_64-linux-gnu/sys"]
BLOCK = "64K"
SWEEP = "1500ms"
MOUNT_EXTRA = ["--sweep-interval", SWEEP, "--ping-interval", "1s",
               "--timeout", "5s"]


def sources():
    out = [d for d in SRC_DIRS if os.path.isdir(d)]
    if not out:
        pytest.skip("no source tree to copy under /usr/include")
    return out


# A child that writes files, fsyncs each, and only then records its sha256
# in REC (itself fsync'd).  An overwrite in place is announced first
# ("begin"), so a kill between the two leaves that file out of the check.
WRITER = r"""
import hashlib, os, random, sys
mnt, rec, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = random.Random(seed)
d = os.path.join(mnt, "fsynced")
os.makedirs(d, exist_ok=True)
R = open(rec, "a")
def note(line):
    R.write(line + "\n"); R.flush(); os.fsync(R.fileno())
have = {}
i = 0
try:
    while True:
        if have and r.random() < 0.3:
            p = r.choice(sorted(have))
            data = bytearray(have[p])
            off = r.randrange(0, len(data) + 1)
            chunk = r.randbytes(r.randint(1, 100000))
            note("begin " + p)
            with open(p, "r+b") as f:
                f.seek(off); f.write(chunk); f.flush(); os.fsync(f.fileno())
            data[off:off + len(chunk)] = chunk
        else:
            # Names of this round only: a "wb" of a file an earlier
            # round recorded would change it with no "begin" line.
            p = os.path.join(d, "f%d_%d" % (seed, i))
            i += 1
            data = r.randbytes(r.randint(1, 300000))
            with open(p, "wb") as f:
                f.write(data); f.flush(); os.fsync(f.fileno())
        have[p] = bytes(data)
        note("done %s %s" % (p, hashlib.sha256(data).hexdigest()))
except OSError as e:
    print("writer stopped:", e, file=sys.stderr)
"""

# Walks the mount: every entry lstat()s, every directory lists, every file
# reads to its end, every symlink reads; prints the problems and the sha256
# of every regular file as JSON.
WALKER = r"""
import hashlib, json, os, stat, sys
root = sys.argv[1]
bad, sums = [], {}
def walk(d):
    try:
        names = os.listdir(d)
    except OSError as e:
        bad.append("listdir %s: %s" % (d, e)); return
    for n in names:
        p = os.path.join(d, n)
        try:
            st = os.lstat(p)
        except OSError as e:
            bad.append("dangling %s: %s" % (p, e)); continue
        if stat.S_ISDIR(st.st_mode):
            walk(p)
        elif stat.S_ISLNK(st.st_mode):
            try: os.readlink(p)
            except OSError as e: bad.append("readlink %s: %s" % (p, e))
        elif stat.S_ISREG(st.st_mode):
            try:
                with open(p, "rb") as f:
                    data = f.read()
                if len(data) != st.st_size:
                    bad.append("%s: read %d of %d bytes" % (p, len(data), st.st_size))
                sums[os.path.relpath(p, root)] = [hashlib.sha256(data).hexdigest(), len(data)]
            except OSError as e:
                bad.append("read %s: %s" % (p, e))
walk(root)
print(json.dumps({"bad": bad, "sums": sums}))
"""


def walk(mnt, timeout=240):
    cp = run_with_timeout(WALKER, timeout=timeout, args=[mnt])
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def fsynced_expect(rec):
    """{path: sha256} of the files whose last fsync completed."""
    want = {}
    if not rec.exists():
        return want
    for line in rec.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "begin":
            want[parts[1]] = None
        elif len(parts) == 3 and parts[0] == "done":
            want[parts[1]] = parts[2]
    return {p: h for p, h in want.items() if h is not None}


def check_tree(m, rec, src_root, label):
    """The consistency promises: no dangling entry, everything readable,
    fsync'd files exact, copied files a prefix of their source (every
    write the daemon acknowledged survives a kill -9 of the daemon)."""
    res = walk(m.path)
    assert not res["bad"], f"{label}: {res['bad'][:20]}"
    sums = res["sums"]
    want = fsynced_expect(rec)
    for p, h in want.items():
        rel = os.path.relpath(p, m.path)
        assert rel in sums, f"{label}: fsync'd file {rel} is missing"
        assert sums[rel][0] == h, f"{label}: fsync'd file {rel} differs"
    bad = []
    for rel, (h, size) in sums.items():
        if not rel.startswith("copy/"):
            continue
        src = src_root / rel[len("copy/"):]
        try:
            data = src.read_bytes()
        except OSError:
            bad.append(f"{rel}: no source")
            continue
        if size > len(data) or hashlib.sha256(data[:size]).hexdigest() != h:
            bad.append(f"{rel}: {size} bytes that are not the source's first")
    assert not bad, f"{label}: copied files damaged: {bad[:20]}"
    return len(want), len(sums)


def dead_unmount(m):
    subprocess.run(["fusermount3", "-u", "-z", str(m.path)],
                   capture_output=True, timeout=30)
    end = time.monotonic() + 10
    while m.is_mounted() and time.monotonic() < end:
        time.sleep(0.1)
    assert not m.is_mounted()


def converge_fragments(sw, m, timeout=60):
    """Waits until the suppliers hold exactly the fragments the block
    records place on them (orphans swept and deleted)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        st = m.status_json()
        placed = {s["address"]: s["placed_fragments"] for s in st["suppliers"]}
        disk = {sw.address(i): len(sw.fragment_files(i)) for i in range(sw.n)
                if sw.alive(i)}
        last = (placed, disk)
        if all(placed.get(a, 0) == n for a, n in disk.items()):
            return st
        time.sleep(1)
    pytest.fail(f"fragments did not converge within {timeout} s: "
                f"placed {last[0]} on disk {last[1]}\n{m.log_tail()}")


@pytest.mark.parametrize("seed", SEEDS)
def test_kill9_mount_during_cp(make_swarm, make_mount, tmp_path, seed):
    print(f"crash seed {seed}")
    r = random.Random(seed)
    src = sources()
    sw = make_swarm(6)
    m = make_mount("c")
    m.init()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
    # cp -a of several trees into copy/: copy/<basename>/...
    src_root = tmp_path / "src"
    src_root.mkdir()
    for d in src:
        (src_root / os.path.basename(d)).symlink_to(d)
    rec = tmp_path / "fsynced.txt"

    for round_ in range(2):
        dst = m.path / "copy"
        dst.mkdir(exist_ok=True)
        cps = [subprocess.Popen(["cp", "-a", "--", d, str(dst)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for d in src if not (dst / os.path.basename(d)).exists()]
        wr = subprocess.Popen([sys.executable, "-c", WRITER, str(m.path),
                               str(rec), str(seed * 100 + round_)],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        delay = r.uniform(0.5, 3.0)
        print(f"round {round_}: kill -9 after {delay:.2f} s")
        time.sleep(delay)
        m.kill_daemon(signal.SIGKILL)
        for p in cps + [wr]:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                pytest.fail("a writer hung after the daemon died")
        dead_unmount(m)
        m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
        nf, nall = check_tree(m, rec, src_root, f"seed {seed} round {round_}")
        print(f"round {round_}: {nf} fsync'd files exact, {nall} files readable")

    # Everything on the network, then read back from a cold cache.
    m.sync()
    m.umount()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, cache_size="0",
            extra=MOUNT_EXTRA)
    drop_kernel_cache()
    st = m.status_json()
    assert st["blocks"]["pending"] == 0, st["blocks"]
    check_tree(m, rec, src_root, f"seed {seed} cold")
    # The orphans that the kills left (uploads acknowledged but never
    # committed) are swept: suppliers hold what the records reference.
    converge_fragments(sw, m)
    m.umount()


def test_kill9_supplier_during_uploads(make_swarm, make_mount, tmp_path):
    """8 suppliers, 4+2: one is killed while files are written; sync still
    succeeds (its fragments go elsewhere) and every file reads back from a
    cold cache."""
    seed = SEEDS[0]
    print(f"crash seed {seed}")
    r = random.Random(seed)
    sw = make_swarm(8)
    m = make_mount("s")
    m.init()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
    want = {}
    victim = r.randrange(8)
    kill_at = r.randrange(5, 25)
    for i in range(40):
        data = r.randbytes(r.randint(50000, 400000))
        p = m.path / f"f{i}"
        p.write_bytes(data)
        want[p] = hashlib.sha256(data).hexdigest()
        if i == kill_at:
            print(f"kill -9 supplier {victim} after file {i}")
            sw.kill(victim)
    m.sync()
    m.umount()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, cache_size="0",
            extra=MOUNT_EXTRA)
    drop_kernel_cache()
    for p, h in want.items():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == h, p
    st = m.status_json()
    assert st["blocks"]["pending"] == 0
    dead = sw.address(victim)
    placed_dead = [s["placed_fragments"] for s in st["suppliers"]
                   if s["address"] == dead]
    # What it acknowledged before dying stays placed there (still
    # readable through the others); nothing after.
    assert placed_dead and placed_dead[0] <= len(sw.fragment_files(victim))
    m.umount()


def supplier_figures(m, addr, timeout=20):
    end = time.monotonic() + timeout
    while True:
        st = m.status_json()
        for s in st["suppliers"]:
            if s["address"] == addr and s["state"] in ("online", "ok") or \
                    (s["address"] == addr and s.get("rtt_ms", -1) >= 0):
                return s
        if time.monotonic() > end:
            pytest.fail(f"supplier {addr} not online again: {st['suppliers']}")
        time.sleep(0.5)


def test_supplier_survives_kill9(make_swarm, make_mount, tmp_path):
    """SIGKILL a supplier during heavy uploads (several times), restart
    it: no temporaries remain, and its accounting (what it tells the owner)
    equals the fragment files in its store."""
    seed = SEEDS[0]
    print(f"crash seed {seed}")
    r = random.Random(seed)
    sw = make_swarm(6)
    m = make_mount("k")
    m.init()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
    victim = r.randrange(6)
    code = r"""
import os, random, sys
r = random.Random(int(sys.argv[2]))
for i in range(400):
    with open(os.path.join(sys.argv[1], "h%d" % i), "wb") as f:
        f.write(r.randbytes(r.randint(20000, 200000)))
"""
    wr = subprocess.Popen([sys.executable, "-c", code, str(m.path),
                           str(seed)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    for k in range(3):
        time.sleep(r.uniform(0.3, 1.5))
        print(f"kill -9 supplier {victim} ({k})")
        sw.kill(victim)
        time.sleep(0.3)
        sw.start(victim)
    wr.wait(180)
    m.sync()
    store = sw.stores[victim]
    tmps = [p for p in store.rglob("*") if ".tmp." in p.name]
    assert not tmps, f"temporaries left after restart: {tmps[:5]}"
    files = sw.fragment_files(victim)
    size = sum(p.stat().st_size for p in files)
    addr = sw.address(victim)
    end = time.monotonic() + 20
    while True:
        s = [x for x in m.status_json()["suppliers"] if x["address"] == addr][0]
        if (s["fragments"], s["bytes"]) == (len(files), size) or \
                time.monotonic() > end:
            break
        time.sleep(0.5)
    assert (s["fragments"], s["bytes"]) == (len(files), size), \
        f"supplier says {s['fragments']} fragments / {s['bytes']} bytes, " \
        f"its store holds {len(files)} / {size}"
    # Every fragment the owner placed there is really there.
    assert s["placed_fragments"] <= len(files)
    m.umount()


def test_sweep_deletes_planted_orphans(make_swarm, make_mount, tmp_path):
    """Fragments nothing references (an unknown block id, and a stray copy
    of a real block's fragment under an index the record places elsewhere)
    are deleted by the sweep; referenced ones stay and still read."""
    sw = make_swarm(6)
    m = make_mount("w")
    m.init()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
    data = os.urandom(200000)
    (m.path / "keep").write_bytes(data)
    m.sync()
    data_ids = data_block_ids(m.home)
    assert len(data_ids) == 4, data_ids     # 200,000 bytes in 64 KiB blocks

    def data_frags(i):
        # Index versions are published and pruned in the background while
        # bookkeeping changes (a supplier stopping is one): only the file's
        # own fragments must stay as they are.
        return {f for f in sw.fragment_files(i) if f.name[:64] in data_ids}
    before = {i: data_frags(i) for i in range(6)}
    victim = 0
    real = sorted(before[victim])[0]
    # An unknown block: 32 random bytes + index 0.
    fake_id = os.urandom(32).hex() + "00"
    fake = real.parent.parent / fake_id[:2] / fake_id
    # A stray: the same block id under an index no record puts here.
    idx = int(real.name[64:], 16)
    stray = real.parent / (real.name[:64] + "%02x" % ((idx + 1) % 6))
    sw.stop(victim)
    fake.parent.mkdir(exist_ok=True)
    fake.write_bytes(os.urandom(1000))
    if not stray.exists():
        shutil.copyfile(real, stray)
    sw.start(victim)
    planted = [fake, stray]
    end = time.monotonic() + 40
    while time.monotonic() < end and any(p.exists() for p in planted):
        time.sleep(0.5)
    assert not any(p.exists() for p in planted), \
        f"planted orphans still there: {[p for p in planted if p.exists()]}"
    for i in range(6):
        assert data_frags(i) == before[i], f"supplier {i}"
    m.drop_cache()
    assert (m.path / "keep").read_bytes() == data
    assert "orphaned fragments queued" in m.log_text()
    m.umount()


# -- ENOSPC ---------------------------------------------------------------

def fill(path, chunk=256 << 10, limit=1 << 30):
    """Writes files under path until ENOSPC; returns (files, error)."""
    code = r"""
import errno, os, sys
d, chunk, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n, total, err = 0, 0, 0
buf = os.urandom(chunk)
try:
    while total < limit:
        p = os.path.join(d, "fill%d" % n)
        n += 1
        with open(p, "wb") as f:
            for _ in range(8):
                f.write(buf); total += chunk
except OSError as e:
    err = e.errno
print(n, err)
"""
    cp = run_with_timeout(code, timeout=120, args=[path, chunk, limit])
    assert cp.returncode == 0, cp.stderr
    n, err = cp.stdout.split()
    return int(n), int(err)


def create_until_error(path, prefix, size, limit):
    """Creates files prefix%05d of size random bytes under path until an
    error or limit files; returns (files, errno or 0, stderr)."""
    code = r"""
import os, sys
d, prefix, size, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4])
n, err = 0, 0
try:
    while n < limit:
        with open(os.path.join(d, "%s%05d" % (prefix, n)), "wb") as f:
            f.write(os.urandom(size))
        n += 1
except OSError as e:
    err = e.errno
print(n, err)
"""
    cp = run_with_timeout(code, timeout=120, args=[path, prefix, size, limit])
    n, err = map(int, cp.stdout.split())
    return n, err, cp.stderr


@pytest.fixture
def small_tmpfs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs",
                         str(d)], capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {cp.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def enospc_then_recover(m, label):
    """Writes until ENOSPC, checks that the mount still serves, deletes,
    writes again."""
    (m.path / "before").write_bytes(b"x" * 100000)
    n, err = fill(m.path)
    assert err == errno.ENOSPC, f"{label}: writing until full gave " \
        f"{errno.errorcode.get(err, err)} after {n} files"
    assert (m.path / "before").read_bytes() == b"x" * 100000
    names = os.listdir(m.path)
    assert "before" in names
    for name in names:
        if name.startswith("fill"):
            os.unlink(m.path / name)
    # Space comes back: a new file can be written and read.
    time.sleep(0.5)
    (m.path / "after").write_bytes(b"y" * 300000)
    assert (m.path / "after").read_bytes() == b"y" * 300000
    assert (m.path / "before").read_bytes() == b"x" * 100000
    return n


def mount_home_on(fs_dir, make_swarm, make_mount, name):
    """6 suppliers, and a mount whose home is under fs_dir."""
    sw = make_swarm(6)
    m = make_mount(name)
    m.home = fs_dir / "home"
    m.init()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
    return sw, m


def test_full_disk_gives_enospc(make_swarm, make_mount, small_tmpfs):
    """The home on a 24 MiB tmpfs, suppliers stopped so the journal cannot
    drain: writes fail with ENOSPC, nothing is corrupted, deleting frees."""
    sw, m = mount_home_on(small_tmpfs, make_swarm, make_mount, "f")
    (m.path / "early").write_bytes(b"e" * 200000)
    m.sync()
    for i in range(6):
        sw.kill(i)
    enospc_then_recover(m, "full disk")
    for i in range(6):
        sw.start(i)
    m.sync()
    m.umount()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, cache_size="0",
            extra=MOUNT_EXTRA)
    assert (m.path / "early").read_bytes() == b"e" * 200000
    assert (m.path / "after").read_bytes() == b"y" * 300000
    m.umount()


def test_full_disk_metadata_gives_enospc(make_swarm, make_mount,
                                          small_tmpfs):
    """The home's disk filled by someone else, then only metadata grows
    (tiny files live in it): creates fail with ENOSPC and the daemon
    lives on (data.mdb is written through its map, where a store into an
    unallocated page of a full disk would be a SIGBUS); once the disk has
    room again, creates work."""
    sw, m = mount_home_on(small_tmpfs, make_swarm, make_mount, "q")
    (m.path / "early").write_bytes(b"e" * 3000)
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * (64 << 10)) > 0:
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    n, err, out = create_until_error(m.path, "tiny", 4000, 20000)
    assert err == errno.ENOSPC, f"creating tiny files on a full disk " \
        f"gave {errno.errorcode.get(err, err)} after {n}: {out}"
    assert m.daemon_pid() is not None, "the daemon died on a full disk"
    assert (m.path / "early").read_bytes() == b"e" * 3000
    if n > 0:
        assert len((m.path / "tiny00000").read_bytes()) == 4000
    os.unlink(filler)
    (m.path / "later").write_bytes(b"l" * 3000)
    assert (m.path / "later").read_bytes() == b"l" * 3000
    m.umount()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=MOUNT_EXTRA)
    assert (m.path / "early").read_bytes() == b"e" * 3000
    assert (m.path / "later").read_bytes() == b"l" * 3000
    m.umount()


def test_full_map_gives_enospc(make_swarm, make_mount):
    """A tiny LMDB map: creating files until it is full gives ENOSPC; the
    mount keeps working and deleting makes room again."""
    sw = make_swarm(6)
    m = make_mount("p")
    m.init()
    extra = MOUNT_EXTRA + ["--map-size", "4M"]
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=extra)
    n, err, out = create_until_error(m.path, "small", 3000, 100000)
    assert err == errno.ENOSPC, f"filling the map gave " \
        f"{errno.errorcode.get(err, err)} after {n} files: {out}"
    assert n > 10
    # Existing files are intact.
    names = sorted(x for x in os.listdir(m.path) if x.startswith("small"))
    assert len(names) >= n
    for name in names[:5] + names[-5:]:
        assert len((m.path / name).read_bytes()) in (0, 3000)
    # Deleting frees room: new files can be created again.
    for name in names[: len(names) // 2]:
        try:
            os.unlink(m.path / name)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            # Writers, creates, uploads and the index uploader stop with a
            # reserve left for deletes, but the background maintenance
            # (audits, rebuild queue) still writes into it: known gap.
            pytest.xfail("unlink on a full map: ENOSPC (maintenance "
                         "writes do not keep the map's reserve)")
    # The records go when the kernel forgets the inodes (soon after):
    # poll until a new file fits.
    def fits():
        try:
            (m.path / "again0").write_bytes(b"z" * 3000)
            return True
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            return False
    wait_for(fits, 30, "room for new files after the deletes")
    for i in range(1, 10):
        (m.path / f"again{i}").write_bytes(b"z" * 3000)
    assert (m.path / "again9").read_bytes() == b"z" * 3000
    m.sync()
    m.umount()
    m.mount(sw.peers, ec="4+2", block_size=BLOCK, extra=extra)
    assert (m.path / "again9").read_bytes() == b"z" * 3000
    m.umount()
