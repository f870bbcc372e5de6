"""Small checks of the maintenance side (fs/maint.c, fs/ctl.c, cli): mount
options, the redundancy attribute, the status figures, `peerfs check` on a
healthy swarm, the durable delete queue. The long scenarios (suppliers
dying, bit rot, liars, unmount mid-rebuild) are in test_alive.py."""

import errno
import os
import re
import threading
import time

import pytest

from conftest import run_peerfs, wait_for

FAST = ["--ping-interval", "300ms", "--suspect-after", "1s",
        "--dead-after", "3s", "--audit-interval", "5s"]


def red(path):
    return os.getxattr(str(path), "user.peerfs.redundancy").decode()


@pytest.mark.parametrize("opt,val", [
    ("--dead-after", "soon"), ("--ping-interval", "0"),
    ("--rebuild-jobs", "0"), ("--rebuild-jobs", "x"),
    ("--rebuild-rate", "12Q"), ("--audit-interval", "-1s"),
])
def test_bad_maint_options(make_mount, opt, val):
    m = make_mount().init()
    cp = run_peerfs(["mount", "--home", m.home, opt, val, m.path])
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert opt in cp.stderr or val in cp.stderr, cp.stderr


def test_suspect_longer_than_dead_refused(make_mount):
    m = make_mount().init()
    cp = run_peerfs(["mount", "--home", m.home, "--suspect-after", "5s",
                     "--dead-after", "2s", m.path])
    assert cp.returncode == 2, cp.stderr


def test_redundancy_status_check_deletes(make_swarm, make_mount):
    sw = make_swarm(7)
    m = make_mount().init()
    m.mount(sw.peers, ec="4+2", block_size="64K",
            extra=FAST + ["--rebuild-jobs", "3", "--rebuild-rate", "10M"])
    f = m.path / "f"
    e = m.path / "empty"
    d = m.path / "dir"
    e.write_bytes(b"")
    d.mkdir()
    data = os.urandom(300_000)
    with open(f, "wb") as fh:
        fh.write(data)
        # Only in the journal until synced (the idle upload waits 2 s).
        assert red(f) in ("pending", "6/6")
    m.sync()
    assert red(f) == "6/6"
    assert red(e) == "6/6"
    with pytest.raises(OSError) as ei:
        os.getxattr(str(d), "user.peerfs.redundancy")
    assert ei.value.errno == errno.ENODATA
    # Read-only and hidden.
    with pytest.raises(OSError) as ei:
        os.setxattr(str(f), "user.peerfs.redundancy", b"1/6")
    assert ei.value.errno == errno.EPERM
    assert "user.peerfs.redundancy" not in os.listxattr(str(f))
    assert red(f) == "6/6"

    st = m.status_json()
    for k in ("rebuild", "audit", "deletes"):
        assert isinstance(st[k], dict), st
    assert st["blocks"]["full"] == st["blocks"]["total"] > 0
    assert st["blocks"]["degraded_by_missing"] == {}
    assert st["rebuild"]["queued"] == 0
    states = sorted(s["state"] for s in st["suppliers"])
    # 7 suppliers, 5 blocks of 6 fragments: at most one can be spare.
    assert set(states) <= {"online", "spare"}, states
    assert all(0 <= s["score"] <= 1 for s in st["suppliers"]), st

    # The background auditor (a pass every 5 s) answers good.
    wait_for(lambda: m.status_json()["audit"]["ok"] > 0, 20, "audits")

    cp = run_peerfs(["check", m.path], timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "result: full redundancy" in cp.stdout
    # 5 data blocks of 6 fragments, plus the index's own blocks.
    got = re.search(r"fragments audited: (\d+) \((\d+) good, 0 bad\)", cp.stdout)
    assert got and int(got[1]) >= 30 and got[1] == got[2], cp.stdout

    # Deleting the file queues its fragments for deletion; they go (the
    # index's own blocks come and go meanwhile: count the deletes).
    done0 = m.status_json()["deletes"]["done"]
    os.unlink(f)
    m.sync()
    def settled(s):
        return (s["deletes"]["pending"] == 0 and
                s["deletes"]["done"] >= done0 + 30 and
                sum(x["fragments"] for x in s["suppliers"]) ==
                sum(x["placed_fragments"] for x in s["suppliers"]))
    st = wait_for(lambda: (lambda s: s if settled(s) else None)(m.status_json()),
                  30, "fragments deleted")
    assert st["blocks"]["total"] == 0


def test_deletes_wait_for_an_offline_supplier(make_swarm, make_mount):
    """A delete for a supplier that is away stays queued (in LMDB, across
    a remount) and goes out once it is back."""
    sw = make_swarm(6)
    m = make_mount().init()
    extra = ["--ping-interval", "300ms", "--suspect-after", "20s",
             "--dead-after", "60s"]
    m.mount(sw.peers, ec="4+2", block_size="64K", extra=extra)
    (m.path / "g").write_bytes(os.urandom(100_000))
    m.sync()
    sw.stop(0)
    os.unlink(m.path / "g")
    # One supplier of 4+2 away: no index version can be stored, and sync
    # says so instead of claiming the delete durable (issue 20); the
    # deletes are queued all the same.
    cp = run_peerfs(["sync", m.path])
    assert cp.returncode == 1 and "not everything" in cp.stderr, cp.stderr
    # 2 blocks of 6 fragments: the 10 on reachable suppliers go, the 2 of
    # the stopped one wait.
    # (Index versions leaving the window may add deletes of their own.)
    st = wait_for(lambda: (lambda s: s if s["deletes"]["pending"] >= 2 and
                           s["deletes"]["done"] >= 10 and
                           s["blocks"]["total"] == 0 else None)(m.status_json()),
                  20, "deletes queued for the stopped supplier")
    pending = st["deletes"]["pending"]
    assert st["deletes"]["bytes"] > 0, st["deletes"]
    # umount would wait for that version (up to --timeout): --force.
    cp = run_peerfs(["umount", "--force", m.path])
    assert cp.returncode == 0, cp.stderr
    wait_for(lambda: not m.is_mounted() and m.daemon_pid() is None, 30,
             "the daemon to exit")
    m.mount(sw.peers, ec="4+2", block_size="64K", extra=extra)
    assert m.status_json()["deletes"]["pending"] == pending
    sw.start(0)
    wait_for(lambda: m.status_json()["deletes"]["pending"] == 0, 30,
             "deletes sent once the supplier is back")
    # g's fragments (64K blocks: 16 KiB + header each) are gone; only the
    # index's small fragments may remain.
    left = [f for f in sw.fragment_files(0) if os.path.getsize(f) >= 16384]
    assert left == [], left


def test_deletes_yield_to_reads(make_swarm, make_mount):
    """A big file's deletes run beside cold reads at a trickle (one per
    50 ms while a read waited on suppliers in the last 0.5 s: they share
    the suppliers' disks and our CPU), then at full speed once the reads
    stop; none is lost."""
    sw = make_swarm(3)
    m = make_mount().init()
    m.mount(sw.peers, ec="2+1", block_size="64K", cache_size="0")
    src = os.urandom(2 << 20)
    (m.path / "r").write_bytes(src)
    # 256 blocks of 3 fragments: 768 deletes, a second or two unhindered.
    (m.path / "d").write_bytes(os.urandom(16 << 20))
    m.sync()
    stop = threading.Event()
    reads = [0]
    bad = []

    def reader():
        # Cold every time: no chunk cache (--cache-size 0), and the
        # kernel's copy dropped before each pass.
        while not stop.is_set():
            with open(m.path / "r", "rb") as fh:
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                if fh.read() != src:
                    bad.append(reads[0])
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        wait_for(lambda: reads[0] >= 2, 60, "the reader to start")
        done0 = m.status_json()["deletes"]["done"]
        t0 = time.monotonic()
        os.unlink(m.path / "d")
        m.sync()
        wait_for(lambda: m.status_json()["deletes"]["done"] > done0, 30,
                 "the first deletes")
        time.sleep(3)
        st = m.status_json()
        window = time.monotonic() - t0
        during = st["deletes"]["done"] - done0
        n_reads = reads[0]
    finally:
        stop.set()
        t.join(120)
    assert not bad, f"reads {bad} returned wrong bytes"
    # 20 a second while reads go on; twice that and 100 more of room
    # for gaps between the reader's fetches on a loaded machine (at full
    # speed all 768 go in a second or two).
    assert during <= window * 40 + 100, \
        f"{during} deletes in {window:.1f} s beside {n_reads} cold reads"
    assert st["deletes"]["pending"] > 0, st["deletes"]
    wait_for(lambda: m.status_json()["deletes"]["pending"] == 0, 120,
             "the deletes to finish once the reads stopped")
    assert m.status_json()["deletes"]["done"] >= done0 + 768
    m.umount()
