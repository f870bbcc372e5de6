"""Recovery from the key alone (issue "Nothing lost", section 3).

A tree is written and synced, the recovery code exported, the home deleted;
`peerfs restore` with one supplier address rebuilds the metadata from the
index on the suppliers and a mount of the new home shows the same tree.
Also: mistyped codes, `peerfs versions`, restoring an older version, a
supplier that hides the newest head (rollback) and a forged head.
"""

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_peerfs


def make_tree(root, seed=1):
    """Small files, a few multi-block ones, nesting, a symlink, an empty
    directory, odd names."""
    rnd = random.Random(seed)
    root.mkdir(parents=True)
    for d in range(4):
        sub = root / f"dir{d}" / f"deeper{d % 2}"
        sub.mkdir(parents=True)
        for f in range(12):
            (sub / f"f{f}.txt").write_bytes(rnd.randbytes(rnd.randrange(0, 20000)))
    (root / "big.bin").write_bytes(rnd.randbytes(9 * 1024 * 1024 + 123))
    (root / "mid.bin").write_bytes(rnd.randbytes(300 * 1024))
    (root / "empty").mkdir()
    (root / "name with spaces").write_text("spaces\n")
    os.symlink("dir0/deeper0/f1.txt", root / "link")
    return root


def diff_tree(a, b):
    cp = subprocess.run(["diff", "-r", "--no-dereference", str(a), str(b)],
                        capture_output=True, text=True, errors="replace",
                        timeout=600)
    assert cp.returncode == 0, f"diff -r {a} {b}:\n{cp.stdout[:3000]}{cp.stderr[:2000]}"


def export_code(m, path):
    cp = run_peerfs(["key", "export", "--home", m.home])
    assert cp.returncode == 0, cp.stderr
    code = cp.stdout.strip()
    assert re.fullmatch(r"[A-Z2-7]{5}([-\n][A-Z2-7]{5})+", code), code
    assert "keep it" in cp.stderr          # the warning, not on stdout
    path.write_text(code + "\n")
    return code


def restore(home, code_file, peer, *extra):
    return run_peerfs(["restore", "--home", home, "--code-file", code_file,
                       "--peer", peer, "--no-passphrase", *extra])


def versions(m):
    cp = run_peerfs(["versions", m.path])
    assert cp.returncode == 0, cp.stderr
    out = []
    for line in cp.stdout.splitlines()[1:]:
        parts = line.split()
        out.append((int(parts[0]), int(parts[-1])))
    return out


def restored_seq(cp):
    m = re.search(r"restored version (\d+)", cp.stdout)
    assert m, f"no 'restored version' in {cp.stdout!r} / {cp.stderr!r}"
    return int(m.group(1))


def heads_dir(store):
    dirs = list(Path(store).glob("*/heads"))
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture
def setup(make_swarm, make_mount, tmp_path):
    sw = make_swarm(6)
    m = make_mount("orig")
    m.init()
    m.mount(sw.peers)
    return sw, m, tmp_path


def test_restore_from_key_alone(setup, make_mount):
    sw, m, tmp = setup
    ref = make_tree(tmp / "ref")
    shutil.copytree(ref, m.path / "tree", symlinks=True)
    os.setxattr(m.path / "tree" / "mid.bin", "user.color", b"blue")
    code_file = tmp / "code.txt"
    export_code(m, code_file)
    m.umount()
    shutil.rmtree(m.home)                    # only the code is left

    r = make_mount("restored")
    cp = restore(r.home, code_file, sw.address(2))
    assert cp.returncode == 0, cp.stderr
    assert restored_seq(cp) >= 1
    # One address given, all six learnt from the index.
    known = set((r.home / "peers").read_text().split())
    assert known == set(sw.peers)
    r.mount([])
    diff_tree(ref, r.path / "tree")
    assert os.getxattr(r.path / "tree" / "mid.bin", "user.color") == b"blue"
    r.drop_cache()
    diff_tree(ref, r.path / "tree")          # from the suppliers, cold
    # The restored home carries on: new versions above the old ones.
    before = versions(r)[0][0]
    (r.path / "after.txt").write_text("after restore\n")
    r.sync()
    assert versions(r)[0][0] > before
    r.umount()


def test_restore_needs_no_ec(make_swarm, make_mount, tmp_path):
    """A home mounted with --ec 3+2 is restored without repeating it: the
    head names the code; the restored home keeps it, and a mount given
    another --ec is refused with the home's code named."""
    sw = make_swarm(5)
    m = make_mount("ec32")
    m.init()
    m.mount(sw.peers, ec="3+2")
    ref = make_tree(tmp_path / "ref", seed=7)
    shutil.copytree(ref, m.path / "tree", symlinks=True)
    code_file = tmp_path / "code.txt"
    export_code(m, code_file)
    m.umount()
    cp = m.try_mount(sw.peers, ec="4+2")
    assert cp.returncode != 0
    assert "--ec 3+2" in cp.stderr + m.log_tail(), cp.stderr
    shutil.rmtree(m.home)

    r = make_mount("ec32r")
    cp = restore(r.home, code_file, sw.address(1))
    assert cp.returncode == 0, cp.stderr
    r.mount([])                              # no --ec either
    r.drop_cache()
    diff_tree(ref, r.path / "tree")
    (r.path / "after.bin").write_bytes(b"x" * 300000)
    r.sync()
    r.drop_cache()
    assert (r.path / "after.bin").read_bytes() == b"x" * 300000
    r.umount()


def test_restore_refusals(setup, make_mount):
    sw, m, tmp = setup
    (m.path / "a").write_text("a\n")
    m.sync()
    code = export_code(m, tmp / "code.txt")
    groups = re.split(r"[-\n]", code)
    g = groups[4]
    c = "A" if g[1] != "A" else "B"
    groups[4] = g[0] + c + g[2:]
    (tmp / "bad.txt").write_text("-".join(groups) + "\n")
    r = make_mount("r")
    cp = restore(r.home, tmp / "bad.txt", sw.address(0))
    assert cp.returncode == 1
    assert "group 5 of the recovery code is mistyped" in cp.stderr
    assert not (r.home / "key").exists()

    # Bad usage is exit 2, like the other commands.
    cp = run_peerfs(["restore", "--home", r.home, "--code-file", tmp / "code.txt"])
    assert cp.returncode == 2 and "--peer" in cp.stderr
    cp = run_peerfs(["restore", "--bogus"])
    assert cp.returncode == 2
    cp = run_peerfs(["key"])
    assert cp.returncode == 2
    cp = run_peerfs(["versions"])
    assert cp.returncode == 2

    # An existing home is never overwritten.
    cp = restore(m.home, tmp / "code.txt", sw.address(0))
    assert cp.returncode == 1 and "not empty" in cp.stderr

    # Suppliers without any index of this identity.
    other = make_mount("other")
    other.init()
    cp = run_peerfs(["key", "export", "--home", other.home])
    (tmp / "other.txt").write_text(cp.stdout)
    r2 = make_mount("r2")
    cp = restore(r2.home, tmp / "other.txt", sw.address(0))
    assert cp.returncode == 1 and "no index" in cp.stderr
    assert not r2.home.exists() or not any(r2.home.iterdir())


def test_versions_and_older_version(setup, make_mount):
    sw, m, tmp = setup
    m.umount()
    m.mount(sw.peers, keep_versions=None)       # peerfs's default: 10
    old_one = os.urandom(300_000)
    (m.path / "one").write_bytes(old_one)
    m.sync()
    seqs = [versions(m)[0][0]]
    for name in ("two", "three"):
        (m.path / name).write_text(name + "\n")
        # Overwritten: its old blocks are freed, yet the first version
        # still needs them.
        (m.path / "one").write_bytes(os.urandom(300_000))
        m.sync()
        seqs.append(versions(m)[0][0])
    vs = versions(m)
    listed = [s for s, _ in vs]
    assert listed == sorted(listed, reverse=True)
    assert len(set(listed)) == len(listed)
    assert seqs[0] < seqs[1] < seqs[2]
    assert set(seqs) <= set(listed)
    assert all(size > 0 for _, size in vs)
    export_code(m, tmp / "code.txt")
    m.umount()

    r = make_mount("old")
    cp = restore(r.home, tmp / "code.txt", sw.address(1), "--version", seqs[0])
    assert cp.returncode == 0, cp.stderr
    assert restored_seq(cp) == seqs[0]
    r.mount([], cache_size="0")
    assert sorted(os.listdir(r.path)) == ["one"]
    assert (r.path / "one").read_bytes() == old_one   # from suppliers
    r.umount()

    cp = restore(tmp / "nohome", tmp / "code.txt", sw.address(1),
                 "--version", 999999)
    assert cp.returncode == 1 and "999999" in cp.stderr


def test_rollback_and_forged_head(setup, make_mount):
    sw, m, tmp = setup
    for name in ("one", "two"):
        (m.path / name).write_text(name + "\n")
        m.sync()
    export_code(m, tmp / "code.txt")
    m.umount()
    # The newest head: umount publishes one more (it releases the lease).
    newest = max(int(p.name) for p in heads_dir(sw.stores[1]).iterdir()
                 if p.name.isdigit())

    # Supplier 0 "loses" the newest head: it offers only older ones.
    hd = heads_dir(sw.stores[0])
    newest_file = hd / f"{newest:020d}"
    good = newest_file.read_bytes()
    newest_file.unlink()
    r = make_mount("rb")
    cp = restore(r.home, tmp / "code.txt", sw.address(0))
    assert cp.returncode == 0, cp.stderr
    assert restored_seq(cp) == newest         # learnt from the others
    assert sw.address(0) in cp.stderr and "rollback" in cp.stderr
    r.mount([])
    assert sorted(os.listdir(r.path)) == ["one", "two"]
    r.umount()

    # A forged head (bad signature) with a higher number is never used.
    forged = bytearray(good)
    forged[-3] ^= 0x55
    (hd / f"{newest + 5:020d}").write_bytes(bytes(forged))
    r2 = make_mount("forged")
    cp = restore(r2.home, tmp / "code.txt", sw.address(0))
    assert cp.returncode == 0, cp.stderr
    assert restored_seq(cp) != newest + 5
    r2.mount([])
    assert sorted(os.listdir(r2.path)) == ["one", "two"]
    r2.umount()
