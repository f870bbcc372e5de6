"""Tiny files (<= 4 KiB) live inline in the owner's metadata (issue #5).

A file whose whole content is at most 4096 bytes is not sealed into a
block of k + m fragments: its bytes are an inline record in LMDB and reach
the suppliers inside the sealed index. Checked here: no data block and no
new data fragments for 100 tiny files, contents after remount and with a
cold cache, a file growing past the limit and shrinking back (its block
deleted on the suppliers, the inline record gone after unlink), umount
then restore onto a fresh home, and an 8 KiB file still stored as a block.
"""

import os
import random
import re
import shutil
import subprocess

import pytest

from conftest import run_peerfs, wait_for

SMALL = 100


def inline_records(home):
    """Records in the mount's `inline` LMDB table (read-only, works while
    mounted)."""
    if not shutil.which("mdb_stat"):
        pytest.skip("mdb_stat (lmdb-utils) is not installed")
    cp = subprocess.run(["mdb_stat", "-s", "inline", str(home / "meta")],
                        capture_output=True, text=True)
    m = re.search(r"Entries: (\d+)", cp.stdout)
    assert m, f"no inline table in {home}/meta: {cp.stdout}{cp.stderr}"
    return int(m.group(1))


def frag_set(sw):
    return {f for i in range(sw.n) for f in sw.fragment_files(i)}


def new_blocks(sw, before):
    """Block id -> sizes of its fragment files that are not in `before`
    (old index versions come and go meanwhile: only new files count)."""
    out = {}
    for f in frag_set(sw) - before:
        out.setdefault(f.name[:64], []).append(os.path.getsize(f))
    return out


def big_frags(sw, min_size):
    return [f for i in range(sw.n) for f in sw.fragment_files(i)
            if os.path.getsize(f) >= min_size]


def deletes_settled(m):
    s = m.status_json()
    ok = (s["deletes"]["pending"] == 0 and
          sum(x["fragments"] for x in s["suppliers"]) ==
          sum(x["placed_fragments"] for x in s["suppliers"]))
    return s if ok else None


def small_files(seed=5):
    rnd = random.Random(seed)
    sizes = [1, 2, 4095, 4096] + [rnd.randrange(1, 4097)
                                  for _ in range(SMALL - 4)]
    out, seen = {}, set()
    for i, n in enumerate(sizes):
        while True:
            data = rnd.randbytes(n)
            if data not in seen:
                break
        seen.add(data)
        out[f"f{i:03d}"] = data
    return out


def check_files(root, files):
    for name, data in files.items():
        got = (root / name).read_bytes()
        assert got == data, f"{name}: {len(got)} bytes read, {len(data)} written"


def export_code(m, path):
    cp = run_peerfs(["key", "export", "--home", m.home])
    assert cp.returncode == 0, cp.stderr
    path.write_text(cp.stdout.strip() + "\n")


@pytest.fixture
def setup(make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount("orig").init()
    m.mount(sw.peers)
    m.sync()
    return sw, m


def test_tiny_files_inline_then_restore(setup, make_mount, tmp_path):
    sw, m = setup
    files = small_files()
    before = frag_set(sw)
    (m.path / "small").mkdir()
    for name, data in files.items():
        (m.path / "small" / name).write_bytes(data)
    m.sync()
    st = m.status_json()
    # No data block: everything is inline, nothing left pending.
    assert st["blocks"]["total"] == 0, st["blocks"]
    assert st["blocks"]["pending"] == 0, st["blocks"]
    assert inline_records(m.home) == SMALL
    # 100 blocks would be 600 fragments; only index versions came.
    added = new_blocks(sw, before)
    assert len(added) < 20, f"{len(added)} new blocks for {SMALL} tiny files"
    check_files(m.path / "small", files)
    m.drop_cache()
    check_files(m.path / "small", files)

    # Mixed: an 8 KiB file is still a block on the suppliers.
    mid = random.Random(9).randbytes(8192)
    before = frag_set(sw)
    (m.path / "eight").write_bytes(mid)
    m.sync()
    st = m.status_json()
    assert st["blocks"]["total"] == 1, st["blocks"]
    assert st["blocks"]["full"] == 1, st["blocks"]
    # 4 + 2 fragments of 2 KiB and more (an index segment is smaller).
    added = new_blocks(sw, before)
    assert [v for v in added.values() if len(v) == 6 and min(v) >= 2048], added
    assert inline_records(m.home) == SMALL

    m.remount()
    check_files(m.path / "small", files)
    m.drop_cache()
    check_files(m.path / "small", files)
    assert (m.path / "eight").read_bytes() == mid

    # Written just before umount, no sync: umount puts them on the network
    # (in the index) before it returns.
    late = {f"late{i}": os.urandom(i * 37 + 1) for i in range(10)}
    (m.path / "late").mkdir()
    for name, data in late.items():
        (m.path / "late" / name).write_bytes(data)
    code = tmp_path / "code.txt"
    export_code(m, code)
    m.umount()
    shutil.rmtree(m.home)

    r = make_mount("restored")
    cp = run_peerfs(["restore", "--home", r.home, "--code-file", code,
                     "--peer", sw.address(3), "--no-passphrase"])
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert inline_records(r.home) == SMALL + len(late)
    r.mount([])
    check_files(r.path / "small", files)
    check_files(r.path / "late", late)
    assert (r.path / "eight").read_bytes() == mid
    r.drop_cache()
    check_files(r.path / "small", files)
    assert (r.path / "eight").read_bytes() == mid
    # The restored home goes on: rewrite a tiny file, read it back.
    (r.path / "small" / "f000").write_bytes(b"new")
    r.sync()
    r.remount()
    assert (r.path / "small" / "f000").read_bytes() == b"new"
    r.umount()


def test_grow_shrink_unlink(setup):
    sw, m = setup
    f = m.path / "g"
    rnd = random.Random(3)
    head = rnd.randbytes(100)
    f.write_bytes(head)
    m.sync()
    assert f.read_bytes() == head
    assert inline_records(m.home) == 1
    assert m.status_json()["blocks"]["total"] == 0

    # Past 4 KiB: block 0 becomes a real block, the inline record goes.
    tail = rnd.randbytes((1 << 20) - 100)
    with open(f, "ab") as fh:
        fh.write(tail)
    assert f.read_bytes() == head + tail
    m.sync()
    assert f.read_bytes() == head + tail
    assert m.status_json()["blocks"]["total"] == 1
    assert inline_records(m.home) == 0
    # 1 MiB in 4 + 2: six fragments of 256 KiB (index fragments are tiny).
    assert len(big_frags(sw, 200_000)) == 6
    m.drop_cache()
    assert f.read_bytes() == head + tail

    # Cut to 10 bytes: inline again, the big block deleted on suppliers.
    os.truncate(f, 10)
    assert f.read_bytes() == head[:10]
    m.sync()
    assert f.read_bytes() == head[:10]
    assert inline_records(m.home) == 1
    wait_for(lambda: deletes_settled(m), 30, "deletes sent")
    assert m.status_json()["blocks"]["total"] == 0
    assert big_frags(sw, 200_000) == []
    m.drop_cache()
    assert f.read_bytes() == head[:10]
    # Grows again by truncate: zeros after the inline bytes.
    os.truncate(f, 3000)
    assert f.read_bytes() == head[:10] + bytes(2990)
    with open(f, "r+b") as fh:      # a write in the middle of it
        fh.seek(5)
        fh.write(b"XY")
    want = head[:5] + b"XY" + head[7:10] + bytes(2990)
    assert f.read_bytes() == want
    m.sync()
    m.drop_cache()
    assert f.read_bytes() == want
    assert inline_records(m.home) == 1

    os.unlink(f)
    m.sync()
    assert not f.exists()
    assert inline_records(m.home) == 0
    assert m.status_json()["blocks"]["total"] == 0
    # A file cut to 0 leaves no record either.
    e = m.path / "e"
    e.write_bytes(b"abc")
    m.sync()
    assert inline_records(m.home) == 1
    os.truncate(e, 0)
    assert inline_records(m.home) == 0
    assert e.read_bytes() == b""
    m.umount()


def test_tiny_write_skips_the_journal(setup):
    """A write that leaves a tiny file whole goes to its inline record:
    nothing pending and no staging file left, even for a file still open
    and before any sync; the files count as uploading until an index
    holding them is published, and one grown past 4 KiB becomes a block."""
    sw, m = setup
    files = small_files(seed=11)
    (m.path / "direct").mkdir()
    for name, data in files.items():
        (m.path / "direct" / name).write_bytes(data)
    # One still open: its bytes are already in the record.
    with open(m.path / "direct" / "open", "wb") as f:
        f.write(b"still open")
        f.flush()
        st = m.status_json()
        assert st["blocks"]["pending"] == 0, st["blocks"]
        staged = [p for p in (m.home / "journal").iterdir()
                  if not p.name.startswith(".")]
        assert staged == [], staged
        assert inline_records(m.home) == SMALL + 1
    files["open"] = b"still open"
    wait_for(lambda: m.status_json()["uploading"] == 0, 60,
             "the index holding the tiny files")
    check_files(m.path / "direct", files)
    # Appending past 4 KiB moves one of them to the journal and a block.
    name, data = next((n, d) for n, d in files.items() if len(d) > 100)
    with open(m.path / "direct" / name, "ab") as f:
        f.write(b"x" * 5000)
    m.sync()
    assert (m.path / "direct" / name).read_bytes() == data + b"x" * 5000
    assert m.status_json()["blocks"]["total"] == 1
    assert inline_records(m.home) == SMALL
