"""Core end-to-end behaviour on a real swarm of 6 suppliers, ec 4+2.

The module fixture copies a tree (/usr/include, or PEERFS_TREE_SRC) and a
64 MiB random file into the mount and syncs; every test starts from that
state with all 6 suppliers up and leaves it that way.
"""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Mount, Swarm, module_mount, run_with_timeout

TREE_SRC = Path(os.environ.get("PEERFS_TREE_SRC", "/usr/include"))
BIG_SIZE = int(os.environ.get("PEERFS_BIG_MB", "64")) * 1024 * 1024


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def diff_tree(a, b, timeout=600):
    try:
        cp = subprocess.run(["diff", "-r", "--no-dereference", str(a), str(b)],
                            capture_output=True, text=True, errors="replace",
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"diff -r {a} {b} did not finish in {timeout} s", pytrace=False)
    assert cp.returncode == 0, \
        f"diff -r {a} {b} exited {cp.returncode}:\n{cp.stdout[:3000]}{cp.stderr[:3000]}"


class Core:
    def __init__(self, swarm, mnt, big_sha):
        self.swarm = swarm
        self.mnt = mnt
        self.big_sha = big_sha

    @property
    def tree(self):
        return self.mnt.path / "tree"

    @property
    def big(self):
        return self.mnt.path / "big.bin"

    def check_all(self):
        diff_tree(TREE_SRC, self.tree)
        assert os.path.getsize(self.big) == BIG_SIZE
        assert sha256_file(self.big) == self.big_sha, "64 MiB file differs"

    def cold_remount(self, peers=None):
        self.mnt.remount(peers=peers, cache_size="0")

    def restore(self):
        """Back to the fixture state: all suppliers up, mounted."""
        for i in range(self.swarm.n):
            self.swarm.start(i)
        if not self.mnt.is_mounted():
            self.mnt.cleanup()
            self.mnt.mount(self.swarm.peers, ec="4+2")


@pytest.fixture(scope="module")
def core(tmp_path_factory, swarm6):
    gen = module_mount(tmp_path_factory, swarm6, name="core", ec="4+2")
    mnt = next(gen)
    try:
        cp = subprocess.run(["cp", "-a", str(TREE_SRC), str(mnt.path / "tree")],
                            capture_output=True, text=True, timeout=900)
        assert cp.returncode == 0, f"cp -a into the mount failed:\n{cp.stderr[:3000]}"
        h = hashlib.sha256()
        with open(mnt.path / "big.bin", "wb") as f:
            left = BIG_SIZE
            while left:
                b = os.urandom(min(left, 1 << 20))
                h.update(b)
                f.write(b)
                left -= len(b)
        mnt.sync()
        yield Core(swarm6, mnt, h.hexdigest())
    finally:
        gen.close()


@pytest.fixture
def fresh(core):
    core.restore()
    yield core
    core.restore()


def test_tree_copy_identical(fresh):
    fresh.check_all()


def test_status_after_sync(fresh):
    fresh.mnt.sync()
    st = fresh.mnt.status_json()
    sups = st["suppliers"]
    assert len(sups) == 6, st
    for s in sups:
        for k in ("id", "address", "state", "rtt_ms", "fragments", "bytes"):
            assert k in s, f"supplier entry lacks {k!r}: {s}"
    online = [s for s in sups if str(s["state"]).lower() in ("online", "up", "ok", "healthy")]
    assert len(online) == 6, f"want 6 online suppliers: {[s['state'] for s in sups]}"
    assert sorted(s["address"] for s in sups) == sorted(fresh.swarm.peers)
    b = st["blocks"]
    for k in ("total", "full", "degraded", "lost", "pending"):
        assert k in b, f"blocks lacks {k!r}: {b}"
    assert b["pending"] == 0, st
    assert b["total"] > 0, st
    assert b["lost"] == 0, st
    assert b["full"] == b["total"], st
    # 64 MiB at 4 MiB blocks is 16 blocks at least.
    assert b["total"] >= BIG_SIZE // (4 << 20), st
    assert sum(s["fragments"] for s in sups) >= 6 * (BIG_SIZE // (4 << 20)), st
    assert all(s["fragments"] > 0 and s["bytes"] > 0 for s in sups), sups
    assert "journal_bytes" in st and "cache_bytes" in st, st


def test_cold_remount_reads_from_suppliers(fresh):
    fresh.mnt.umount()
    fresh.mnt.mount(fresh.swarm.peers, ec="4+2", cache_size="0")
    st = fresh.mnt.status_json()
    # Nothing left locally: what is read next has to come from suppliers.
    assert st["blocks"]["pending"] == 0, st
    assert st["journal_bytes"] == 0, st
    assert st["cache_bytes"] == 0, st
    fresh.check_all()
    assert fresh.mnt.status_json()["cache_bytes"] == 0, "--cache-size 0 but cache used"


def test_two_suppliers_down_still_readable(fresh):
    fresh.mnt.umount()
    fresh.swarm.stop(1)
    fresh.swarm.kill(4)        # one polite exit, one crash
    # All six are named; two of them don't answer.
    fresh.mnt.mount(fresh.swarm.peers, ec="4+2", cache_size="0")
    fresh.check_all()


def test_three_suppliers_down_eio(fresh):
    fresh.mnt.umount()
    fresh.mnt.mount(fresh.swarm.peers, ec="4+2", cache_size="0")
    down = [0, 2, 5]
    for i in down:
        fresh.swarm.stop(i)
    log_before = len(fresh.mnt.log_text())
    code = (
        "import sys, errno\n"
        "try:\n"
        "    with open(sys.argv[1], 'rb') as f:\n"
        "        while f.read(1 << 20): pass\n"
        "    print('OK')\n"
        "except OSError as e:\n"
        "    print('ERRNO', e.errno)\n"
    )
    t0 = time.monotonic()
    cp = run_with_timeout(code, timeout=60, args=[fresh.big])
    took = time.monotonic() - t0
    assert cp.stdout.strip() == "ERRNO 5", \
        f"reading with 3 of 6 suppliers down: {cp.stdout!r} {cp.stderr[-500:]!r} " \
        f"(after {took:.1f} s)"
    time.sleep(0.5)
    new_log = fresh.mnt.log_text()[log_before:]
    stopped = [fresh.swarm.address(i) for i in down]
    keys = ["unreachable", "eio", "input/output", "not enough", "fragments"] + stopped
    lines = [l for l in new_log.splitlines() if any(k in l.lower() for k in keys)]
    assert lines, f"mount.log has no line about the failed read; new log:\n{new_log[-3000:]}"

    # The suppliers come back: the same mount reads the file again.
    for i in down:
        fresh.swarm.start(i)
    deadline = time.monotonic() + 60
    while True:
        cp = run_with_timeout(code, timeout=60, args=[fresh.big])
        if cp.stdout.strip() == "OK" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert cp.stdout.strip() == "OK", \
        f"still failing 60 s after the suppliers came back: {cp.stdout!r}"
    assert sha256_file(fresh.big) == fresh.big_sha


def test_no_plaintext_on_suppliers(fresh):
    marker = b"PEERFS-PLAINTEXT-CANARY-7f3a9c21"
    names = ["canary_name_q8z7x6w5.txt", "canarydir_m4n3b2v1"]
    d = fresh.mnt.path / names[1]
    d.mkdir()
    (d / names[0]).write_bytes(marker * 3)                       # tiny, inline
    (d / "big_canary.dat").write_bytes((marker + b"\n") * 200000)  # several blocks
    fresh.mnt.sync()
    needles = [marker, marker[:20], names[0].encode(), names[1].encode(),
               b"ncurses.h", b"big_canary"]
    found = []
    n_files = 0
    roots = fresh.swarm.stores + fresh.swarm.homes
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for fn in files:
                p = Path(dirpath) / fn
                for nd in needles:
                    if nd in fn.encode():
                        found.append((str(p), nd))
                try:
                    data = p.read_bytes()
                except OSError:
                    continue
                n_files += 1
                for nd in needles:
                    if nd in data:
                        found.append((str(p), nd))
    assert n_files > 0, "supplier stores are empty after sync"
    assert not found, f"plaintext found on supplier disks: {found[:10]}"
