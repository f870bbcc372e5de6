"""One vault, several machines (issue 20).

Homes restored from one recovery code are nodes of one owner. Only the node
holding the write lease (carried in the signed heads) writes; another one
mounts read-only, says why, and follows the newest version. `--take-over`
moves the lease; a node whose lease ran out under it (frozen) cannot claim
durability (`sync` fails, `umount` fails clearly) and replays its changes
when it writes again; a killed holder blocks the others for one lease.
Real suppliers, real mounts; the lease is short (--lease) to keep it quick.
"""

import errno
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import errno_of, run_peerfs, wait_for

LEASE = "4s"


def export_code(m, path):
    cp = run_peerfs(["key", "export", "--home", m.home])
    assert cp.returncode == 0, cp.stderr
    path.write_text(cp.stdout.strip() + "\n")


def restore(m, code_file, peer):
    cp = run_peerfs(["restore", "--home", m.home, "--code-file", code_file,
                     "--peer", peer, "--no-passphrase"])
    assert cp.returncode == 0, cp.stderr
    return cp


def mount(m, sw, *extra):
    cp = m.try_mount(sw.peers, extra=["--lease", LEASE, *extra])
    assert cp.returncode == 0, f"{cp.stderr}\n{m.log_tail()}"
    assert m.is_mounted()
    return cp


def writer(m):
    return m.status_json()["writer"]


def versions(m):
    cp = run_peerfs(["versions", m.path])
    assert cp.returncode == 0, cp.stderr
    return [line.split() for line in cp.stdout.splitlines()[1:]]


def dead_unmount(m):
    subprocess.run(["fusermount3", "-u", "-z", str(m.path)],
                   capture_output=True, timeout=30)
    wait_for(lambda: not m.is_mounted(), 10, f"{m.path} unmounted")


@pytest.fixture
def twins(make_swarm, make_mount, tmp_path):
    sw = make_swarm(6)
    a = make_mount("a")
    a.init()
    mount(a, sw)
    (a.path / "first.txt").write_text("from a, before b\n")
    a.sync()
    code = tmp_path / "code.txt"
    export_code(a, code)
    b = make_mount("b")
    restore(b, code, sw.address(1))
    return sw, a, b, code


def third_restore(make_mount, sw, code):
    c = make_mount("c")
    restore(c, code, sw.address(3))
    c.mount(sw.peers, extra=["--lease", LEASE])
    return c


def test_second_node_is_read_only_and_follows(twins, make_mount):
    sw, a, b, code = twins
    cp = mount(b, sw)
    assert "read-only" in cp.stderr and "write lease" in cp.stderr, cp.stderr
    assert not writer(b) and writer(a)
    st = b.status_json()
    assert "read-only" in st["readonly_why"]
    assert st["lease"]["holder"] == a.status_json()["node"]
    assert st["node"] != a.status_json()["node"]
    assert os.listdir(b.path) == ["first.txt"]
    assert (b.path / "first.txt").read_text() == "from a, before b\n"
    # Every change is refused on the reader.
    assert errno_of((b.path / "nope.txt").write_text, "x") == errno.EROFS
    assert errno_of(os.mkdir, b.path / "nodir") == errno.EROFS
    assert errno_of(os.unlink, b.path / "first.txt") == errno.EROFS
    assert not (b.path / "nope.txt").exists()
    # A file written on the writer appears on the reader within seconds.
    big = os.urandom(300_000)
    (a.path / "later.txt").write_text("written on a while b reads\n")
    (a.path / "big.bin").write_bytes(big)
    a.sync()
    wait_for(lambda: (b.path / "later.txt").exists(), 30, "later.txt on b")
    assert (b.path / "later.txt").read_text() == "written on a while b reads\n"
    assert (b.path / "big.bin").read_bytes() == big
    # sync on the reader with nothing of its own succeeds.
    b.sync()
    # versions and status name the publishing node.
    vs = versions(a)
    assert vs and vs[0][3] == a.status_json()["node"], vs
    assert "node:" in run_peerfs(["status", b.path]).stdout

    # --take-over moves the lease: a hands over, b writes, a reads.
    b.umount()
    cp = mount(b, sw, "--take-over")
    assert "--take-over" in cp.stderr or "asked" in cp.stderr, cp.stderr
    wait_for(lambda: writer(b), 30, "b to get the lease from a")
    wait_for(lambda: not writer(a), 10, "a to become read-only")
    assert errno_of((a.path / "nope.txt").write_text, "x") == errno.EROFS
    (b.path / "from-b.txt").write_text("written on b after take-over\n")
    b.sync()
    wait_for(lambda: (a.path / "from-b.txt").exists(), 30, "from-b.txt on a")
    a.umount()
    b.umount()
    c = third_restore(make_mount, sw, code)
    assert sorted(os.listdir(c.path)) == ["big.bin", "first.txt", "from-b.txt",
                                          "later.txt"]
    assert (c.path / "big.bin").read_bytes() == big
    c.umount()


def test_refused_head_fails_then_replays(twins, make_mount):
    sw, a, b, code = twins
    (a.path / "same.txt").write_text("base\n")
    a.sync()
    # a writes, then freezes before its index thread publishes: its
    # lease runs out under it and b takes the vault.
    pid = a.daemon_pid()
    (a.path / "only-a.txt").write_text("a's own file\n")
    (a.path / "same.txt").write_text("a's version\n")
    os.kill(pid, signal.SIGSTOP)
    try:
        mount(b, sw)
        wait_for(lambda: writer(b), 30, "b to take the expired lease")
        (b.path / "only-b.txt").write_text("b's own file\n")
        (b.path / "same.txt").write_text("b's version\n")
        b.sync()
    finally:
        os.kill(pid, signal.SIGCONT)
    # a's changes are refused: sync says so instead of returning 0.
    cp = run_peerfs(["sync", a.path])
    assert cp.returncode != 0, cp.stderr
    assert "diverged" in cp.stderr, cp.stderr
    assert re.search(r"published version \d+", cp.stderr), cp.stderr
    st = a.status_json()
    assert st["diverged"] and not st["writer"]
    assert "diverged: another node of this owner published version" in \
        run_peerfs(["status", a.path]).stdout
    # umount fails clearly, and does not hang.
    cp = run_peerfs(["umount", a.path], timeout=60)
    assert cp.returncode == 1 and "diverged" in cp.stderr, cp.stderr
    assert a.is_mounted()
    # b leaves (lease released); a comes back and replays its changes.
    b.umount()
    cp = run_peerfs(["umount", "--force", a.path], timeout=60)
    assert cp.returncode == 0, cp.stderr
    mount(a, sw)
    wait_for(lambda: writer(a), 30, "a to hold the lease again")
    a.sync()
    names = sorted(os.listdir(a.path))
    conflict = [n for n in names if n.startswith("same.txt.conflict-")]
    assert len(conflict) == 1, names
    a.umount()
    c = third_restore(make_mount, sw, code)
    names = sorted(os.listdir(c.path))
    assert {"first.txt", "only-a.txt", "only-b.txt", "same.txt"} <= set(names)
    assert (c.path / "only-a.txt").read_text() == "a's own file\n"
    assert (c.path / "only-b.txt").read_text() == "b's own file\n"
    assert (c.path / "same.txt").read_text() == "b's version\n"
    conflict = [n for n in names if n.startswith("same.txt.conflict-")]
    assert len(conflict) == 1, names
    assert re.fullmatch(r"same\.txt\.conflict-\d{8}-\d{6}-[0-9a-f]{16}",
                        conflict[0])
    assert (c.path / conflict[0]).read_text() == "a's version\n"
    c.umount()


def test_killed_holder_blocks_one_lease(twins, make_mount):
    sw, a, b, code = twins
    mount(b, sw)
    assert not writer(b)
    (a.path / "before-kill.txt").write_text("synced before the kill\n")
    a.sync()
    # Left in a's journal by the kill (never synced).
    unsynced = os.urandom(100_000)
    (a.path / "unsynced.bin").write_bytes(unsynced)
    a.kill_daemon(signal.SIGKILL)
    dead_unmount(a)
    # b follows, then takes the lease once it runs out.
    wait_for(lambda: writer(b), 30, "b to take the lease of the dead node")
    assert (b.path / "before-kill.txt").read_text() == "synced before the kill\n"
    (b.path / "after-kill.txt").write_text("b writes after the kill\n")
    b.sync()
    # The killed node comes back read-only (b holds the lease): its
    # journal is uploaded and kept, and replayed once b leaves.
    cp = mount(a, sw)
    assert "read-only" in cp.stderr, cp.stderr
    assert errno_of((a.path / "nope.txt").write_text, "x") == errno.EROFS
    b.umount()
    wait_for(lambda: writer(a), 30, "a to take the released lease")
    a.sync()
    assert (a.path / "after-kill.txt").read_text() == "b writes after the kill\n"
    a.umount()
    c = third_restore(make_mount, sw, code)
    names = set(os.listdir(c.path))
    assert {"first.txt", "before-kill.txt", "after-kill.txt"} <= names
    # a's unsynced file, under its name or (when its name reached the
    # network before the kill, but not its bytes) as a conflict copy.
    copies = [n for n in names if n.startswith("unsynced.bin")]
    assert any((c.path / n).read_bytes() == unsynced for n in copies), copies
    c.umount()


def test_offline_edits_on_both_nodes(twins, make_mount):
    sw, a, b, code = twins
    (a.path / "same.txt").write_text("base\n")
    (a.path / "gone.txt").write_text("deleted by b, kept: a changed it\n")
    a.sync()
    a.umount()
    mount(b, sw)                        # b learns the base, then leaves
    assert (b.path / "same.txt").read_text() == "base\n"
    b.umount()
    for i in range(sw.n):
        sw.stop(i)
    # Both write with no supplier reachable: the same file, their own
    # files, and b deletes a file a changes.
    for m, who in ((a, "a"), (b, "b")):
        cp = m.try_mount(sw.peers, extra=["--lease", LEASE, "--timeout", "2s"])
        assert cp.returncode == 0, cp.stderr
        (m.path / "same.txt").write_text(f"{who}'s offline version\n")
        (m.path / f"only-{who}.txt").write_text(f"{who} offline\n")
    (a.path / "gone.txt").write_text("a changed it offline\n")
    os.unlink(b.path / "gone.txt")
    for m in (a, b):                    # the journal stays in the home
        cp = run_peerfs(["umount", "--force", m.path], timeout=60)
        assert cp.returncode == 0, cp.stderr
    sw.start_all()
    # a comes back first and writes; b comes back with changes on top of
    # an older version: read-only (diverged) until a leaves.
    mount(a, sw)
    wait_for(lambda: writer(a), 30, "a to hold the lease")
    a.sync()
    cp = mount(b, sw)
    assert "read-only" in cp.stderr, cp.stderr
    wait_for(lambda: b.status_json()["diverged"], 30, "b to see it diverged")
    a.umount()
    wait_for(lambda: writer(b), 30, "b to take the released lease")
    b.sync()
    b.umount()
    c = third_restore(make_mount, sw, code)
    names = sorted(os.listdir(c.path))
    assert (c.path / "only-a.txt").read_text() == "a offline\n"
    assert (c.path / "only-b.txt").read_text() == "b offline\n"
    assert (c.path / "same.txt").read_text() == "a's offline version\n"
    copies = [n for n in names if n.startswith("same.txt.conflict-")]
    assert len(copies) == 1, names
    assert (c.path / copies[0]).read_text() == "b's offline version\n"
    # b's delete does not remove a file a changed.
    assert (c.path / "gone.txt").read_text() == "a changed it offline\n"
    c.umount()


@pytest.mark.parametrize("first", ["a", "b"])
def test_offline_deletes_and_renames_replayed(twins, make_mount, first):
    """b deletes and renames offline while a writes, then either comes
    back first: b's deletions and renames are in the end state except
    where a changed the file (then both are kept). When b catches up last,
    a directory it moved takes a's new file along; when a does, a's new
    file stays at the path a wrote it to."""
    sw, a, b, code = twins
    base = {"del.txt": "deleted by b\n", "both-del.txt": "deleted by both\n",
            "kept.txt": "deleted by b, changed by a\n",
            "ren.txt": "renamed by b\n",
            "ren-changed.txt": "renamed by b, changed by a\n",
            "dir/f.txt": "in a dir b moves\n", "gonedir/x.txt": "rm -r by b\n",
            "a-del.txt": "deleted by a\n", "tagged.txt": "b tags it\n",
            "linked.txt": "b links it\n"}
    for name, text in base.items():
        (a.path / name).parent.mkdir(exist_ok=True)
        (a.path / name).write_text(text)
    a.sync()
    a.umount()
    mount(b, sw)                        # b learns the base, then leaves
    assert (b.path / "dir/f.txt").read_text() == base["dir/f.txt"]
    b.umount()
    for i in range(sw.n):
        sw.stop(i)
    for m in (a, b):
        cp = m.try_mount(sw.peers, extra=["--lease", LEASE, "--timeout", "2s"])
        assert cp.returncode == 0, cp.stderr
    (a.path / "kept.txt").write_text("a changed it offline\n")
    (a.path / "ren-changed.txt").write_text("a changed it offline\n")
    (a.path / "dir/from-a.txt").write_text("a's new file in dir\n")
    os.unlink(a.path / "a-del.txt")
    os.unlink(a.path / "both-del.txt")
    for name in ("del.txt", "both-del.txt", "kept.txt", "gonedir/x.txt"):
        os.unlink(b.path / name)
    os.rmdir(b.path / "gonedir")
    os.rename(b.path / "ren.txt", b.path / "renamed.txt")
    os.rename(b.path / "ren-changed.txt", b.path / "ren-changed-new.txt")
    os.mkdir(b.path / "sub")
    os.rename(b.path / "dir", b.path / "sub/moved")
    # xattrs, empty new directories and hard links come along too.
    os.setxattr(b.path / "tagged.txt", "user.tag", b"by b")
    (b.path / "new.txt").write_text("b's new file\n")
    os.setxattr(b.path / "new.txt", "user.tag", b"new")
    os.makedirs(b.path / "empty/nested")
    os.link(b.path / "new.txt", b.path / "new-link.txt")
    os.link(b.path / "linked.txt", b.path / "sub/linked-too.txt")
    for m in (a, b):
        cp = run_peerfs(["umount", "--force", m.path], timeout=60)
        assert cp.returncode == 0, cp.stderr
    sw.start_all()
    for m in (a, b) if first == "a" else (b, a):
        mount(m, sw)                    # the second one catches up
        wait_for(lambda: writer(m), 30, f"{m.name} to hold the lease")
        m.sync()
        m.umount()
    c = third_restore(make_mount, sw, code)
    names = sorted(os.listdir(c.path))
    assert names == (["dir"] if first == "b" else []) + [
        "empty", "first.txt", "kept.txt", "linked.txt", "new-link.txt",
        "new.txt", "ren-changed-new.txt", "ren-changed.txt", "renamed.txt",
        "sub", "tagged.txt"], names
    assert (c.path / "kept.txt").read_text() == "a changed it offline\n"
    assert (c.path / "renamed.txt").read_text() == base["ren.txt"]
    assert (c.path / "ren-changed.txt").read_text() == \
        "a changed it offline\n"
    assert (c.path / "ren-changed-new.txt").read_text() == \
        base["ren-changed.txt"]
    assert sorted(os.listdir(c.path / "sub")) == ["linked-too.txt", "moved"]
    assert os.getxattr(c.path / "tagged.txt", "user.tag") == b"by b"
    assert (c.path / "tagged.txt").read_text() == base["tagged.txt"]
    assert os.getxattr(c.path / "new.txt", "user.tag") == b"new"
    assert os.listdir(c.path / "empty") == ["nested"]
    assert os.listdir(c.path / "empty/nested") == []
    for one, two in (("new.txt", "new-link.txt"),
                     ("linked.txt", "sub/linked-too.txt")):
        s1, s2 = os.stat(c.path / one), os.stat(c.path / two)
        assert s1.st_ino == s2.st_ino and s1.st_nlink == 2, (one, two)
    assert (c.path / "sub/linked-too.txt").read_text() == base["linked.txt"]
    assert (c.path / "sub/moved/f.txt").read_text() == base["dir/f.txt"]
    from_a = "sub/moved/from-a.txt" if first == "a" else "dir/from-a.txt"
    assert (c.path / from_a).read_text() == "a's new file in dir\n"
    assert sorted(os.listdir(c.path / "sub/moved")) == \
        ["f.txt"] + (["from-a.txt"] if first == "a" else [])
    c.umount()


def test_idle_renewals_keep_versions(make_swarm, make_mount, tmp_path):
    """An idle writer renews its lease with heads naming the same index:
    they neither push older versions out of the suppliers' 16 nor count
    toward --keep-versions, so an overwritten file's first version stays
    restorable however long the vault idles."""
    sw = make_swarm(6)
    a = make_mount("a")
    a.init()
    a.mount(sw.peers, keep_versions=None, extra=["--lease", "1s"])  # 10
    old = os.urandom(300_000)
    (a.path / "one").write_bytes(old)
    a.sync()
    first = int(versions(a)[0][0])
    (a.path / "one").write_bytes(os.urandom(300_000))
    a.sync()
    second = int(versions(a)[0][0])
    # Idle: a renewal each third of a second; far more than 16 heads and
    # than --keep-versions (peerfs's default, 10).
    wait_for(lambda: int(versions(a)[0][0]) >= second + 40, 50,
             "40 lease renewals")
    listed = [int(v[0]) for v in versions(a)]
    assert first in listed and second in listed, listed
    assert len(listed) <= 2 * 16, listed
    code = tmp_path / "code.txt"
    export_code(a, code)
    a.umount()
    r = make_mount("old")
    cp = run_peerfs(["restore", "--home", r.home, "--code-file", code,
                     "--peer", sw.address(1), "--no-passphrase",
                     "--version", str(first)])
    assert cp.returncode == 0, cp.stderr
    r.mount([], cache_size="0")
    assert (r.path / "one").read_bytes() == old      # from suppliers
    r.umount()
