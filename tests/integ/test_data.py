"""File contents (fs/data.c): write-back journal, uploads, truncate, reads
back from suppliers after a remount without cache, writes while suppliers
are down.  Small blocks (64K) so that files span many blocks quickly."""

import os
import random
import threading
import time

import pytest

from conftest import drop_kernel_cache, wait_for

BS = "64K"
BSN = 64 * 1024


def random_ops(path, ref, seed, steps=300, max_size=1_200_000):
    """Random pwrite / ftruncate / fsync on path and on a reference file;
    compares the whole file every 50 steps."""
    rnd = random.Random(seed)
    fm = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fr = os.open(ref, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for i in range(steps):
            r = rnd.random()
            if r < 0.06:
                sz = rnd.randrange(0, max_size)
                os.ftruncate(fm, sz)
                os.ftruncate(fr, sz)
            elif r < 0.09:
                os.fsync(fm)
            else:
                n = rnd.randrange(1, 3 * BSN)
                off = rnd.randrange(0, max_size - n)
                data = rnd.randbytes(n) if rnd.random() < 0.7 else bytes(n)
                assert os.pwrite(fm, data, off) == n
                os.pwrite(fr, data, off)
            if i % 50 == 0:
                assert os.fstat(fm).st_size == os.fstat(fr).st_size
                assert os.pread(fm, max_size, 0) == os.pread(fr, max_size, 0), \
                    f"{path} differs at step {i}"
    finally:
        os.close(fm)
        os.close(fr)


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def pending(m):
    return m.status_json()["blocks"]["pending"]


def test_random_io_then_remount_without_cache(make_swarm, make_mount, tmp_path):
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    ref = tmp_path / "ref"
    ref.mkdir()
    random_ops(m.path / "a", ref / "a", seed=1)
    random_ops(m.path / "b", ref / "b", seed=2, max_size=300_000)
    (m.path / "small").write_bytes(b"hello")
    (ref / "small").write_bytes(b"hello")
    m.sync()
    m.remount(cache_size="0")
    for name in ("a", "b", "small"):
        assert same(m.path / name, ref / name), name
    # read-modify-write of stored blocks fetched from suppliers
    with open(m.path / "a", "r+b") as f, open(ref / "a", "r+b") as g:
        for off in (5, BSN - 3, 3 * BSN + 100):
            f.seek(off)
            f.write(b"XYZ")
            g.seek(off)
            g.write(b"XYZ")
    assert same(m.path / "a", ref / "a")
    m.sync()
    m.remount(cache_size="0")
    assert same(m.path / "a", ref / "a")


def test_truncate_up_and_down(make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    p = m.path / "t"
    data = os.urandom(5 * BSN + 1234)
    p.write_bytes(data)
    m.sync()
    os.truncate(p, 2 * BSN + 10)           # cuts a stored block
    os.truncate(p, 4 * BSN)                # grows: zeros, not old bytes
    want = data[:2 * BSN + 10] + bytes(4 * BSN - (2 * BSN + 10))
    assert p.read_bytes() == want
    m.sync()
    m.remount(cache_size="0")
    assert p.read_bytes() == want
    os.truncate(p, 0)
    assert p.read_bytes() == b""
    m.sync()
    assert m.status_json()["blocks"]["total"] == 0   # cut blocks forgotten
    with open(p, "ab") as f:
        f.write(b"tail")
    assert p.read_bytes() == b"tail"


def test_concurrent_writers(make_swarm, make_mount, tmp_path):
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    ref = tmp_path / "ref"
    ref.mkdir()
    errors = []

    def run(i):
        try:
            random_ops(m.path / f"c{i}", ref / f"c{i}", seed=100 + i, steps=200)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    m.sync()
    m.remount(cache_size="0")
    for i in range(4):
        assert same(m.path / f"c{i}", ref / f"c{i}"), i


def test_fsync_uploads(make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    fd = os.open(m.path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, os.urandom(3 * BSN + 7))
        os.fsync(fd)
        assert pending(m) == 0
    finally:
        os.close(fd)


def test_write_back_delay(make_swarm, make_mount, tmp_path):
    """Closing a file does not hurry its partial blocks: they wait for the
    write-back delay; `peerfs sync` sends them at once, and a short delay
    sends them with no sync at all."""
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS, extra=["--write-back", "1h"])
    data = os.urandom(BSN + 5000)      # one full block, one partial
    (m.path / "f").write_bytes(data)
    # The full block went at once; the tail waits for its hour.
    wait_for(lambda: pending(m) == 1, 30, "only the partial block pending")
    assert pending(m) == 1
    m.sync()
    assert pending(m) == 0
    m.remount(cache_size="0", extra=["--write-back", "300ms"])
    assert (m.path / "f").read_bytes() == data
    (m.path / "g").write_bytes(data[:5000 + 4096])
    wait_for(lambda: pending(m) == 0, 30, "the tail uploaded with no sync")
    m.remount(cache_size="0", extra=["--write-back", "0"])
    assert (m.path / "g").read_bytes() == data[:5000 + 4096]
    (m.path / "h").write_bytes(data)
    wait_for(lambda: pending(m) == 0, 30, "uploaded at close")
    m.remount(cache_size="0")
    assert (m.path / "h").read_bytes() == data


def test_same_bytes_are_not_uploaded_again(make_swarm, make_mount):
    """A block whose bytes this owner stores already gets a reference, not
    a second upload (convergent ids are known before sealing): the mount
    counts it as deduplicated, not uploaded, and no fragment file of the
    first copy is replaced; both files read back, also once the first one
    is gone."""
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    data = os.urandom(3 * BSN + 1234)      # 4 blocks
    (m.path / "a").write_bytes(data)
    m.sync()
    st = m.status_json()
    assert st["uploaded"] >= 4 and st["deduplicated"] == 0, st
    inodes = {f: os.stat(f).st_ino for i in range(6)
              for f in sw.fragment_files(i)}
    (m.path / "b").write_bytes(data)
    m.sync()
    st2 = m.status_json()
    assert st2["deduplicated"] == 4, st2
    assert st2["uploaded"] == st["uploaded"], st2
    # Index blocks come and go; data fragments stay as they were.
    now = {f: os.stat(f).st_ino for i in range(6)
           for f in sw.fragment_files(i)}
    kept = [f for f in inodes if f in now]
    assert len(kept) >= 4 * 6 and all(now[f] == inodes[f] for f in kept)
    os.unlink(m.path / "a")
    m.sync()
    m.remount(cache_size="0")
    drop_kernel_cache()
    assert (m.path / "b").read_bytes() == data


def test_write_back_waits_while_files_are_written(make_swarm, make_mount):
    """A closed file's block is due after the write-back delay, but while
    other files are being written it waits (up to 6 delays) so that the
    writer keeps the CPU; once the writes pause it goes."""
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS, extra=["--write-back", "1s"])
    (m.path / "a").write_bytes(os.urandom(BSN // 2 + 4097))
    t0 = time.monotonic()
    fd = os.open(m.path / "b", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        # Writes every 50 ms, never a quiet second, for 3 delays. b stays
        # tiny, so its bytes go inline and are never pending themselves.
        while time.monotonic() - t0 < 3.0:
            os.pwrite(fd, b"x" * 100, 0)
            time.sleep(0.05)
        assert pending(m) == 1, "a's block went while b was being written"
    finally:
        os.close(fd)
    wait_for(lambda: pending(m) == 0, 30, "both blocks once the writes stop")


def test_write_back_bad_value(make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount().init()
    cp = m.try_mount(sw.peers, extra=["--write-back", "soon"])
    assert cp.returncode != 0
    assert "--write-back" in cp.stderr and "soon" in cp.stderr, cp.stderr
    assert not m.is_mounted()


def test_writes_while_suppliers_down(make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    data = os.urandom(3 * BSN + 99)
    (m.path / "new").write_bytes(b"")
    for i in range(3):
        sw.stop(i)
    # new data goes to the journal; reads of it need no supplier
    (m.path / "new").write_bytes(data)
    assert (m.path / "new").read_bytes() == data
    for i in range(3):
        sw.start(i)
    m.sync()
    m.remount(cache_size="0")
    assert (m.path / "new").read_bytes() == data


def test_partial_writes_of_uncached_blocks_while_suppliers_down(
        make_swarm, make_mount):
    """Appending to / patching stored blocks needs no supplier: the old
    bytes are merged at upload time."""
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, block_size=BS)
    p = m.path / "old"
    data = bytearray(os.urandom(2 * BSN + 500))
    p.write_bytes(data)
    m.sync()
    m.remount(cache_size="0")
    for i in range(3):
        sw.stop(i)
    with open(p, "r+b") as f:
        f.seek(100)
        f.write(b"patch")
        f.seek(0, os.SEEK_END)
        f.write(b"appended")
    data[100:105] = b"patch"
    data += b"appended"
    os.truncate(p, len(data) + 10)      # cut/grow an overlay block
    data += bytes(10)
    # (reading them back now would need the rest of the page: suppliers)
    for i in range(3):
        sw.start(i)
    m.sync()                            # merges with the stored blocks
    assert p.read_bytes() == bytes(data)
    m.remount(cache_size="0")
    assert p.read_bytes() == bytes(data)
