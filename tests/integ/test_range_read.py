"""Range reads (issue 16): a cold read of part of a stored block fetches
only the 16 KiB chunks it needs, as ranges of the data fragments holding
them, each chunk checked by its own tag (net/range.c, owner/read.c).
Real suppliers, a real mount, 4 MiB blocks and a 4+2 code."""

import os

import pytest

from conftest import fragment_files

C = 16 * 1024                  # plaintext bytes of a chunk (CR_CHUNK_BYTES)
CS = C + 16                    # sealed bytes of a chunk (with its tag)
BSN = 4 << 20                  # the mount's default block size
HDR = 80                       # liberasurecode's fragment header
# A full block sealed (its bytes and a tag per chunk) splits evenly into
# 4 data fragments; where the second begins, as a plaintext offset.
_FB = (BSN + BSN // C * 16) // 4
FRAG1 = _FB // CS * C + min(_FB % CS, C)


def cold_pread(m, path, off, n):
    """pread on a fresh handle after dropping the mount's and the kernel's
    caches: the read reaches the suppliers."""
    m.drop_cache()
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def fetched(m):
    return m.status_json()["fetched_bytes"]


@pytest.fixture
def filled(make_swarm, make_mount):
    """A sparse file: block 0 full, block 1 a hole, block 2 three chunks
    and a bit; stored and out of the mount's cache."""
    sw = make_swarm(6)
    m = make_mount().init()
    m.mount(sw.peers, ec="4+2")
    b0 = os.urandom(BSN)
    b2 = os.urandom(3 * C + 1234)
    p = m.path / "f"
    with open(p, "wb") as f:
        f.write(b0)
        f.seek(2 * BSN)
        f.write(b2)
    m.sync()
    ref = b0 + bytes(BSN) + b2
    assert os.stat(p).st_size == len(ref)
    return sw, m, p, ref


def test_range_read_every_alignment(filled):
    sw, m, p, ref = filled
    end = len(ref)
    # Block 0's data fragments hold whole chunks each (FRAG1 starts the
    # second); block 2's chunks straddle fragment boundaries.
    cases = [
        (0, 4096), (1, 4096), (C - 1, 2), (C - 4096, 4096), (C, 4096),
        (FRAG1 - 1, 4096), (FRAG1 - 2048, 4096), (FRAG1, 4096),
        (BSN - 4096, 4096), (BSN - 1, 4096),          # into the hole
        (BSN + 123, 4096), (2 * BSN - 10, 4096),      # hole, hole into block 2
        (2 * BSN, 4096), (2 * BSN + C - 2000, 4096),  # across chunks 0, 1
        (2 * BSN + 3 * C - 1, 4096),                  # into the last chunk
        (end - 4096, 4096), (end - 1, 4096), (end + 10, 4096),
        (2 * BSN + 5, 3 * C),                          # several chunks at once
        (BSN - 70000, 140000),                         # block 0's end, the hole
    ]
    for off, n in cases:
        got = cold_pread(m, p, off, n)
        assert got == ref[off:off + n], (off, n, len(got))
    # And the whole file, read in order, is right too.
    m.drop_cache()
    assert p.read_bytes() == ref


def test_random_4k_read_fetches_a_chunk(filled):
    sw, m, p, ref = filled
    for off in (3 * C + 512, 40 * C + 8192, 2 * BSN + C + 100):
        before = fetched(m)
        got = cold_pread(m, p, off, 4096)
        after = fetched(m)
        assert got == ref[off:off + 4096]
        # One chunk with its tag: not the four data fragments of a block.
        assert 0 < after - before <= CS, (off, after - before)
    # A sequential reader gets whole blocks: about the whole file.
    before = fetched(m)
    m.drop_cache()
    assert p.read_bytes() == ref
    assert fetched(m) - before >= BSN


def test_corrupt_chunk_read_from_other_fragments(filled):
    sw, m, p, ref = filled
    # Data fragment 0 of block 0: the largest fragment file named ...00
    # (index blocks are small and sealed whole).
    frags = [f for i in range(6) for f in fragment_files(sw.stores[i])
             if f.name.endswith("00")]
    target = max(frags, key=lambda f: f.stat().st_size)
    assert target.stat().st_size > BSN // 4
    # Flip a byte inside chunk 3's ciphertext, as bit rot would.
    pos = HDR + 3 * CS + 100
    with open(target, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xFF]))
    off = 3 * C + 50
    got = cold_pread(m, p, off, 4096)
    assert got == ref[off:off + 4096]
    log = m.log_text()
    assert "chunk 3 failed its check" in log, m.log_tail()
    # The whole path named the fragment and queued it for rebuild.
    assert "fragment 0 of block" in log and "wrong hash" in log, m.log_tail()
    assert "queued for rebuild" in log, m.log_tail()
    # Read again cold: the fragment is marked lost (or rebuilt), the
    # bytes are right either way.
    assert cold_pread(m, p, off, 4096) == ref[off:off + 4096]


def test_data_fragment_holder_down_reads_whole(filled):
    sw, m, p, ref = filled
    # The supplier of block 0's data fragment 0 stops: a read of a chunk
    # in that fragment cannot be had as a range; it decodes from the
    # other fragments (the whole path), and stays right.
    big = [(f.stat().st_size, i) for i in range(6)
           for f in fragment_files(sw.stores[i]) if f.name.endswith("00")]
    size, holder = max(big)
    assert size > BSN // 4
    sw.stop(holder)
    off = 2 * C + 100
    before = fetched(m)
    assert cold_pread(m, p, off, 4096) == ref[off:off + 4096]
    assert fetched(m) - before >= 4 * (size - HDR) - 4 * C, \
        "a degraded read fetches whole fragments"
    # Chunks in the other data fragments still come as ranges.
    off = FRAG1 + 2 * C + 100
    before = fetched(m)
    assert cold_pread(m, p, off, 4096) == ref[off:off + 4096]
    assert 0 < fetched(m) - before <= CS
