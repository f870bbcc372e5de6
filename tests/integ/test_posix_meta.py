"""Metadata operations compared with ext4: the same script of syscalls runs
in a directory of the mount and in a directory on the local disk, and every
errno, mode, link count, owner and time change must agree.

The reference directory must be on ext4 (the tests skip otherwise); ACLs
are left out because peerfs has none (tested apart: EOPNOTSUPP).
"""

import ctypes
import errno
import json
import os
import stat
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import errname, errno_of, module_mount

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                       os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def getxattr_raw(path, name, size):
    """getxattr(2) with a caller-chosen buffer size: returns the length."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.getxattr(os.fsencode(path), name.encode(), buf, size)
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return n


def listxattr_raw(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.listxattr(os.fsencode(path), buf, size)
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return n


@pytest.fixture(scope="module")
def mnt(tmp_path_factory, swarm6):
    yield from module_mount(tmp_path_factory, swarm6, name="meta",
                            opts="allow_other,default_permissions")


def _fstype(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", str(path)],
                         capture_output=True, text=True).stdout.strip()
    return out


@pytest.fixture
def pair(mnt, request):
    """(mount dir, ext4 dir), both fresh, both 0755, owned by root."""
    ref = Path(tempfile.mkdtemp(prefix="peerfs-ref-", dir="/var/tmp"))
    if _fstype(ref) != "ext2/ext3":
        subprocess.run(["rm", "-rf", str(ref)])
        pytest.skip(f"reference dir is {_fstype(ref)}, not ext4")
    ours = mnt.path / f"m{time.monotonic_ns()}_{request.node.name[:30]}"
    ours.mkdir()
    for p in (ref, ours):
        os.chmod(p, 0o755)
    try:
        yield ours, ref
    finally:
        subprocess.run(["rm", "-rf", str(ref)])


class Log:
    """Records what a script observes, path-independently."""

    def __init__(self):
        self.items = []

    def err(self, label, fn, *a, **kw):
        self.items.append((label, errname(errno_of(fn, *a, **kw))))

    def val(self, label, v):
        self.items.append((label, v))

    def st(self, label, p):
        try:
            s = os.lstat(p)
        except OSError as e:
            return self.val(label, errname(e.errno))
        kind = stat.S_IFMT(s.st_mode)
        self.val(label, (stat.filemode(s.st_mode), s.st_nlink,
                         None if kind == stat.S_IFDIR else s.st_size,
                         s.st_uid, s.st_gid, s.st_rdev))

    def ls(self, label, p):
        try:
            self.val(label, sorted(os.listdir(p)))
        except OSError as e:
            self.val(label, errname(e.errno))


def compare(fn, ours, ref):
    a, b = Log(), Log()
    fn(ours, a)
    fn(ref, b)
    diffs = [f"{la}: peerfs {va!r}, ext4 {vb!r}"
             for (la, va), (lb, vb) in zip(a.items, b.items) if va != vb]
    assert len(a.items) == len(b.items)
    assert not diffs, "\n".join(diffs)
    return a.items


def touch(p, data=b"x"):
    with open(p, "wb") as f:
        f.write(data)


def changed(p, op, *a, what="st_mtime_ns", after=None):
    """Runs op(*a); True when the time `what` of p (found at `after` once
    op ran, when given) moved."""
    before = getattr(os.lstat(p), what)
    time.sleep(0.02)            # ext4 stamps with a coarse clock
    op(*a)
    return getattr(os.lstat(after or p), what) != before


# -- scripts -----------------------------------------------------------------

def script_create_remove(d, log):
    log.err("mkdir a", os.mkdir, d / "a")
    log.err("mkdir a again", os.mkdir, d / "a")
    log.err("mkdir a/b", os.mkdir, d / "a" / "b", 0o700)
    log.st("a", d / "a")
    log.st("a/b", d / "a" / "b")
    log.st("d", d)
    touch(d / "f")
    log.st("f", d / "f")
    for what, fn in (("mkdir", os.mkdir), ("mkfifo", os.mkfifo),
                     ("create", lambda p: os.close(os.open(p, os.O_CREAT |
                                                          os.O_WRONLY))),
                     ("symlink", lambda p: os.symlink("t", p))):
        log.err(f"{what} under a file", fn, d / "f" / "x")
        log.err(f"{what} over a file", fn, d / "f")
        log.err(f"{what} over a dir", fn, d / "a")
        log.err(f"{what} in a missing dir", fn, d / "nope" / "x")
    log.err("mkfifo", os.mkfifo, d / "fifo", 0o640)
    log.st("fifo", d / "fifo")
    log.err("mknod sock", os.mknod, d / "sock", stat.S_IFSOCK | 0o600)
    log.st("sock", d / "sock")
    log.err("mknod chr", os.mknod, d / "null", stat.S_IFCHR | 0o666,
            os.makedev(1, 3))
    log.st("chr", d / "null")
    log.err("mknod blk", os.mknod, d / "blk", stat.S_IFBLK | 0o600,
            os.makedev(7, 0))
    log.st("blk", d / "blk")
    log.err("mknod reg", os.mknod, d / "reg", 0o644)
    log.st("reg", d / "reg")
    log.err("unlink dir", os.unlink, d / "a")
    log.err("rmdir file", os.rmdir, d / "f")
    log.err("rmdir non-empty", os.rmdir, d / "a")
    log.err("rmdir missing", os.rmdir, d / "missing")
    log.err("unlink missing", os.unlink, d / "missing")
    # pathlib drops a trailing ".": plain strings here
    log.err("rmdir dot", os.rmdir, f"{d}/a/b/.")
    log.err("rmdir dotdot", os.rmdir, f"{d}/a/b/..")
    log.val("parent mtime on create", changed(d, touch, d / "g"))
    log.val("parent ctime on unlink", changed(d, os.unlink, d / "g",
                                              what="st_ctime_ns"))
    log.val("parent mtime on rmdir", changed(d / "a", os.rmdir,
                                             d / "a" / "b"))
    log.st("a after rmdir", d / "a")
    log.ls("listing", d)
    log.err("truncate dir", os.truncate, d / "a", 0)
    # names and symlink targets at and over the limits
    for n in (255, 256):
        log.err(f"mkdir name {n}", os.mkdir, d / ("n" * n))
        log.err(f"create name {n}", touch, d / ("c" * n))
        log.err(f"rename to name {n}", os.rename, d / "f", d / ("r" * n))
        if n == 255:
            os.rename(d / ("r" * n), d / "f")
        log.err(f"link name {n}", os.link, d / "f", d / ("l" * n))
        log.err(f"lookup name {n}", os.lstat, d / ("z" * n))
    for n in (4095, 4096):
        log.err(f"symlink target {n}", os.symlink, "t" * n, d / f"s{n}")
    log.val("readlink 4095", os.readlink(d / "s4095") == "t" * 4095)
    log.st("symlink", d / "s4095")
    log.err("readlink on a file", os.readlink, d / "f")


def script_links(d, log):
    os.mkdir(d / "a")
    touch(d / "f", b"hello")
    log.err("link a dir", os.link, d / "a", d / "al")
    log.err("link", os.link, d / "f", d / "f2")
    log.st("f after link", d / "f")
    log.val("ctime on link", changed(d / "f", os.link, d / "f", d / "a" / "f3",
                                     what="st_ctime_ns"))
    log.err("link over existing", os.link, d / "f", d / "a")
    log.err("link missing", os.link, d / "nope", d / "x")
    log.err("link into a file", os.link, d / "f", d / "f2" / "x")
    log.val("ctime on unlink", changed(d / "f", os.unlink, d / "f2",
                                       what="st_ctime_ns"))
    log.st("f after unlink", d / "f")
    with open(d / "f", "rb") as fh:
        os.unlink(d / "f")
        os.unlink(d / "a" / "f3")
        log.val("fstat of unlinked", os.fstat(fh.fileno()).st_nlink)
        log.val("read unlinked", fh.read())
    log.ls("after unlinks", d)


def script_rename(d, log):
    os.makedirs(d / "a" / "b")
    os.mkdir(d / "c")
    os.mkdir(d / "e")
    touch(d / "f", b"F")
    touch(d / "h", b"H")
    log.err("plain", os.rename, d / "f", d / "g")
    log.err("cross dirs", os.rename, d / "g", d / "a" / "b" / "g")
    log.err("file over dir", os.rename, d / "a" / "b" / "g", d / "a")
    log.err("dir over file", os.rename, d / "c", d / "h")
    log.err("dir over non-empty dir", os.rename, d / "c", d / "a")
    log.st("d before", d)
    log.err("dir over empty dir", os.rename, d / "c", d / "e")
    log.st("d after", d)
    log.err("dir into itself", os.rename, d / "a", d / "a" / "z")
    log.err("dir into its subtree", os.rename, d / "a", d / "a" / "b" / "z")
    log.err("subdir over ancestor", os.rename, d / "a" / "b", d / "a")
    log.err("missing source", os.rename, d / "nope", d / "x")
    log.err("to itself", os.rename, d / "h", d / "h")
    os.link(d / "h", d / "h2")
    log.err("onto another link", os.rename, d / "h", d / "h2")
    log.ls("both links stay", d)
    log.st("h", d / "h")
    touch(d / "k", b"K")
    log.err("file over file", os.rename, d / "k", d / "h2")
    log.st("h after being replaced", d / "h")
    log.val("h2 content", (d / "h2").read_bytes())
    # a directory moving between parents
    os.mkdir(d / "m")
    log.st("a before move", d / "a")
    log.val("a mtime on move in", changed(d / "a", os.rename, d / "m",
                                          d / "a" / "m"))
    log.st("a after move", d / "a")
    log.st("d after move", d)
    log.val("m ctime on move out", changed(d / "a" / "m", os.rename,
                                           d / "a" / "m", d / "e" / "m",
                                           what="st_ctime_ns",
                                           after=d / "e" / "m"))
    log.st("a after move out", d / "a")
    log.st("e after move in", d / "e")
    log.val("dotdot", os.stat(d / "e" / "m" / "..").st_ino ==
            os.stat(d / "e").st_ino)
    # renameat2 flags
    touch(d / "p", b"P")
    touch(d / "q", b"Q")
    log.err("noreplace onto existing", renameat2, d / "p", d / "q",
            RENAME_NOREPLACE)
    log.err("noreplace onto new", renameat2, d / "p", d / "p2",
            RENAME_NOREPLACE)
    log.err("exchange with missing", renameat2, d / "p2", d / "nope",
            RENAME_EXCHANGE)
    log.err("exchange files", renameat2, d / "p2", d / "q", RENAME_EXCHANGE)
    log.val("exchanged", ((d / "p2").read_bytes(), (d / "q").read_bytes()))
    log.err("both flags", renameat2, d / "p2", d / "q",
            RENAME_EXCHANGE | RENAME_NOREPLACE)
    log.err("exchange file and dir across", renameat2, d / "q",
            d / "a" / "b", RENAME_EXCHANGE)
    log.st("q now a dir", d / "q")
    log.st("a/b now a file", d / "a" / "b")
    log.st("d after exchange", d)
    log.st("a after exchange", d / "a")
    log.err("exchange dir into its subtree", renameat2, d / "a",
            d / "a" / "b", RENAME_EXCHANGE)
    os.makedirs(d / "x" / "y")
    log.err("exchange dir with its child", renameat2, d / "x",
            d / "x" / "y", RENAME_EXCHANGE)
    log.ls("final", d)
    log.ls("final a", d / "a")
    log.ls("final e", d / "e")


def script_attrs(d, log):
    touch(d / "f")
    os.chmod(d / "f", 0o6755)
    log.st("chmod 6755", d / "f")
    log.val("ctime on chmod", changed(d / "f", os.chmod, d / "f", 0o644,
                                      what="st_ctime_ns"))
    os.chmod(d / "f", 0o6755)
    os.chown(d / "f", 1000, 1000)
    log.st("root chown clears set-id (group exec)", d / "f")
    os.chmod(d / "f", 0o6745)
    os.chown(d / "f", 0, 2000)
    log.st("root chown keeps sgid without group exec", d / "f")
    os.chown(d / "f", -1, -1)
    log.st("chown -1 -1", d / "f")
    os.mkdir(d / "dir")
    os.chmod(d / "dir", 0o6755)
    os.chown(d / "dir", 1000, 1000)
    log.st("chown keeps set-id on dirs", d / "dir")
    os.utime(d / "f", ns=(1_000_000_123, 2_000_000_456))
    s = os.lstat(d / "f")
    log.val("utime explicit", (s.st_atime_ns, s.st_mtime_ns))
    before = time.time_ns()
    os.utime(d / "f")
    s = os.lstat(d / "f")
    log.val("utime now", s.st_mtime_ns >= before - 10_000_000)
    os.utime(d / "f", ns=(5_000_000_000, 6_000_000_000))
    os.truncate(d / "f", 10)
    log.st("truncate", d / "f")
    log.val("truncate mtime", os.lstat(d / "f").st_mtime_ns != 6_000_000_000)
    # setgid directories pass their group down
    os.mkdir(d / "s")
    os.chown(d / "s", 0, 3000)
    os.chmod(d / "s", 0o2775)
    os.mkdir(d / "s" / "sub", 0o755)
    log.st("subdir of sgid dir", d / "s" / "sub")
    touch(d / "s" / "file")
    log.st("file in sgid dir", d / "s" / "file")
    os.mkfifo(d / "s" / "fifo")
    log.st("fifo in sgid dir", d / "s" / "fifo")
    # umask
    old = os.umask(0o027)
    try:
        os.mkdir(d / "um")
        touch(d / "um" / "f")
        os.mknod(d / "um" / "n", 0o666)
        os.symlink("x", d / "um" / "l")
    finally:
        os.umask(old)
    for n in ("um", "um/f", "um/n", "um/l"):
        log.st(f"umask {n}", d / n)


def script_xattr(d, log):
    touch(d / "f")
    log.err("set", os.setxattr, d / "f", "user.a", b"1234")
    log.val("get", os.getxattr(d / "f", "user.a"))
    log.err("create existing", os.setxattr, d / "f", "user.a", b"x",
            os.XATTR_CREATE)
    log.err("replace missing", os.setxattr, d / "f", "user.b", b"x",
            os.XATTR_REPLACE)
    log.err("get missing", os.getxattr, d / "f", "user.b")
    log.err("remove missing", os.removexattr, d / "f", "user.b")
    log.val("size query", getxattr_raw(d / "f", "user.a", 0))
    log.err("short buffer", getxattr_raw, d / "f", "user.a", 2)
    log.val("list size", listxattr_raw(d / "f", 0))
    log.err("list short buffer", listxattr_raw, d / "f", 3)
    log.val("list", sorted(os.listxattr(d / "f")))
    log.val("ctime on setxattr", changed(d / "f", os.setxattr, d / "f",
                                         "user.c", b"", what="st_ctime_ns"))
    log.val("ctime on removexattr", changed(d / "f", os.removexattr,
                                            d / "f", "user.c",
                                            what="st_ctime_ns"))
    log.err("trusted as root", os.setxattr, d / "f", "trusted.t", b"v")
    log.val("trusted listed for root", sorted(os.listxattr(d / "f")))
    log.err("unknown namespace", os.setxattr, d / "f", "bogus.x", b"v")
    log.err("name too long", os.setxattr, d / "f", "user." + "n" * 251, b"v")
    log.err("value too big", os.setxattr, d / "f", "user.big",
            b"v" * 65537)
    os.symlink("f", d / "l")
    log.err("user xattr on a symlink", os.setxattr, d / "l", "user.x",
            b"v", follow_symlinks=False)
    os.mkfifo(d / "p")
    log.err("user xattr on a fifo", os.setxattr, d / "p", "user.x", b"v")
    log.err("get user xattr on a fifo", os.getxattr, d / "p", "user.x")


# -- other users --------------------------------------------------------------

def run_as(uid, gid, groups, cwd, fn):
    """fn(log) in a child with the given ids, cwd = cwd; returns the items."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.chdir(cwd)
            os.setgroups(groups)
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            log = Log()
            fn(Path("."), log)
            os.write(w, json.dumps(log.items).encode())
        except BaseException as e:     # noqa: BLE001 - reported to the parent
            os.write(w, json.dumps([["exception", repr(e)]]).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return [tuple(x) for x in json.loads(b"".join(chunks))]


def setup_users(d):
    os.chmod(d, 0o777)
    for name, mode, owner in (("mine", 0o644, (1000, 1000)),
                              ("root600", 0o600, (0, 0)),
                              ("root644", 0o644, (0, 0)),
                              ("root666", 0o666, (0, 0)),
                              ("suid", 0o6777, (0, 0)),
                              ("mine3000", 0o755, (1000, 3000))):
        touch(d / name)
        os.chown(d / name, *owner)
        os.chmod(d / name, mode)
    os.mkdir(d / "sg")
    os.chown(d / "sg", 0, 3000)
    os.chmod(d / "sg", 0o2777)
    os.mkdir(d / "sticky")
    os.chmod(d / "sticky", 0o1777)
    touch(d / "sticky" / "roots")
    os.chmod(d / "sticky" / "roots", 0o666)


def script_user(d, log):
    log.err("chmod own", os.chmod, d / "mine", 0o640)
    log.err("chmod root's", os.chmod, d / "root666", 0o600)
    log.err("chown own to root", os.chown, d / "mine", 0, -1)
    log.err("chown own to self", os.chown, d / "mine", 1000, -1)
    log.err("chgrp own to member group", os.chown, d / "mine", -1, 2000)
    log.st("after chgrp", d / "mine")
    log.err("chgrp own to other group", os.chown, d / "mine", -1, 3000)
    log.err("chown -1 -1 on root's", os.chown, d / "root644", -1, -1)
    log.err("chgrp root's", os.chown, d / "root644", -1, 1000)
    log.err("chmod g+s, group not mine", os.chmod, d / "mine3000", 0o2755)
    log.st("sgid dropped", d / "mine3000")
    os.chmod(d / "mine", 0o6755)
    log.st("chmod 6755 own, member group", d / "mine")
    log.err("chgrp own set-id file", os.chown, d / "mine", -1, 1000)
    log.st("set-id after chgrp", d / "mine")
    log.err("utime explicit, root's 0666", os.utime, d / "root666",
            ns=(1, 2))
    log.err("utime now, root's 0666", os.utime, d / "root666")
    log.err("utime now, root's 0644", os.utime, d / "root644")
    log.err("utime explicit, own", os.utime, d / "mine", ns=(1, 2))
    log.val("access R 0600", os.access(d / "root600", os.R_OK))
    log.val("access R 0644", os.access(d / "root644", os.R_OK))
    log.val("access W 0644", os.access(d / "root644", os.W_OK))
    log.val("access X 0644", os.access(d / "root644", os.X_OK))
    log.err("read 0600", lambda: open(d / "root600", "rb").close())
    with open(d / "suid", "ab") as f:
        f.write(b"x")
    log.st("write clears suid of root's file", d / "suid")
    log.err("truncate root's 0644", os.truncate, d / "root644", 0)
    log.err("setxattr on root's 0644", os.setxattr, d / "root644",
            "user.x", b"v")
    log.err("setxattr on root's 0666", os.setxattr, d / "root666",
            "user.x", b"v")
    log.err("trusted as a user", os.setxattr, d / "mine", "trusted.x", b"v")
    log.val("list on root's", sorted(os.listxattr(d / "root666")))
    fd = os.open(d / "sg" / "f", os.O_CREAT | os.O_WRONLY, 0o2755)
    os.close(fd)
    log.st("create g+s in sgid dir of a foreign group", d / "sg" / "f")
    os.mkdir(d / "sg" / "sub")
    log.st("mkdir in sgid dir", d / "sg" / "sub")
    log.err("unlink root's in sticky", os.unlink, d / "sticky" / "roots")
    log.err("rename root's in sticky", os.rename, d / "sticky" / "roots",
            d / "sticky" / "mine")
    touch(d / "sticky" / "own")
    log.err("rename own in sticky over root's", os.rename,
            d / "sticky" / "own", d / "sticky" / "roots")
    log.err("unlink own in sticky", os.unlink, d / "sticky" / "own")


# -- tests ---------------------------------------------------------------------

def test_create_remove_like_ext4(pair):
    need_root()
    compare(script_create_remove, *pair)


def test_links_like_ext4(pair):
    compare(script_links, *pair)


def test_rename_like_ext4(pair):
    items = compare(script_rename, *pair)
    assert ("exchange files", "OK") in items   # renameat2 really ran


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (chown, mknod of devices, other uids)")


def test_attrs_like_ext4(pair):
    need_root()
    compare(script_attrs, *pair)


def test_xattr_like_ext4(pair):
    need_root()
    compare(script_xattr, *pair)


def test_other_users_like_ext4(pair):
    need_root()
    ours, ref = pair
    for d in pair:
        setup_users(d)
    a = run_as(1000, 1000, [1000, 2000], ours, script_user)
    b = run_as(1000, 1000, [1000, 2000], ref, script_user)
    assert a and a[0][0] != "exception", a
    assert b and b[0][0] != "exception", b
    diffs = [f"{la}: peerfs {va!r}, ext4 {vb!r}"
             for (la, va), (lb, vb) in zip(a, b) if va != vb]
    assert len(a) == len(b)
    assert not diffs, "\n".join(diffs)


def acl(*entries):
    """The xattr form of a POSIX ACL: (tag, perm, id) entries."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i)
                                           for t, p, i in entries)


def test_acls_only_as_mode_bits(pair):
    """No ACLs, but an access ACL that says no more than mode bits sets
    them, as on ext4 (cp -a sets one on every file)."""
    ours, ref = pair
    for d in pair:
        touch(d / "f")
        os.chmod(d / "f", 0o4755)
    for d in pair:
        os.mkdir(d / "dir")
        # No ACL to remove, or an empty one set: fine, nothing changes.
        os.setxattr(d / "f", "system.posix_acl_access", acl())
        os.removexattr(d / "f", "system.posix_acl_access")
        os.removexattr(d / "dir", "system.posix_acl_default")
        os.setxattr(d / "dir", "system.posix_acl_default", acl())
    assert os.stat(ours / "f").st_mode == os.stat(ref / "f").st_mode
    minimal = acl((1, 6, 0xffffffff), (4, 4, 0xffffffff), (0x20, 0, 0xffffffff))
    for d in pair:
        os.setxattr(d / "f", "system.posix_acl_access", minimal)
    assert oct(os.stat(ours / "f").st_mode) == oct(os.stat(ref / "f").st_mode)
    assert os.stat(ours / "f").st_mode & 0o7777 == 0o4640
    # A named user needs a real ACL: refused, mode unchanged.
    named = acl((1, 6, 0xffffffff), (2, 4, 1000), (4, 4, 0xffffffff),
                (0x10, 4, 0xffffffff), (0x20, 0, 0xffffffff))
    got = errno_of(os.setxattr, ours / "f", "system.posix_acl_access", named)
    assert got == errno.EOPNOTSUPP, errname(got)
    got = errno_of(os.setxattr, ours / "f", "system.posix_acl_access",
                   acl((1, 6, 0xffffffff), (0x20, 0, 0xffffffff)))
    assert got == errno.EINVAL, errname(got)
    assert os.stat(ours / "f").st_mode & 0o7777 == 0o4640
    got = errno_of(os.getxattr, ours / "f", "system.posix_acl_access")
    assert got in (errno.EOPNOTSUPP, errno.ENODATA), errname(got)
    # Default ACLs are not kept: only removing one works.
    got = errno_of(os.setxattr, ours / "dir", "system.posix_acl_default",
                   minimal)
    assert got == errno.EOPNOTSUPP, errname(got)
    # cp -a of a tree: no error, modes as in the source.
    src = ref / "tree"
    os.makedirs(src / "sub")
    touch(src / "sub" / "x")
    os.chmod(src / "sub" / "x", 0o640)
    os.chmod(src / "sub", 0o750)
    cp = subprocess.run(["cp", "-a", str(src), str(ours / "tree")],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    for rel in ("", "sub", "sub/x"):
        assert os.stat(ours / "tree" / rel).st_mode == \
            os.stat(src / rel).st_mode, rel


def test_hidden_parent_record_never_shows(pair):
    ours, _ = pair
    os.makedirs(ours / "a" / "b")
    os.rename(ours / "a" / "b", ours / "b")
    assert os.listxattr(ours / "b") == []
    got = errno_of(os.getxattr, ours / "b", "peerfs.parent")
    assert got in (errno.EOPNOTSUPP, errno.ENODATA), errname(got)


class _Dirent(ctypes.Structure):
    _fields_ = [("ino", ctypes.c_uint64), ("off", ctypes.c_int64),
                ("reclen", ctypes.c_ushort), ("type", ctypes.c_ubyte),
                ("name", ctypes.c_char * 256)]


_libc.opendir.restype = ctypes.c_void_p
_libc.opendir.argtypes = [ctypes.c_char_p]
_libc.readdir.restype = ctypes.POINTER(_Dirent)
_libc.readdir.argtypes = [ctypes.c_void_p]
_libc.rewinddir.argtypes = [ctypes.c_void_p]
_libc.telldir.restype = ctypes.c_long
_libc.telldir.argtypes = [ctypes.c_void_p]
_libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
_libc.closedir.argtypes = [ctypes.c_void_p]


def _read_all(dp):
    out = {}
    while True:
        e = _libc.readdir(dp)
        if not e:
            return out
        out[e.contents.name.decode()] = (e.contents.ino, e.contents.type)


def test_readdir_dots_rewind_seek(pair):
    """"." and ".." (also after a move) carry the right inodes; rewinddir
    takes a fresh snapshot; seekdir returns to a telldir position."""
    ours, _ = pair
    os.makedirs(ours / "a" / "moved")
    os.mkdir(ours / "b")
    os.rename(ours / "a" / "moved", ours / "b" / "moved")
    dp = _libc.opendir(os.fsencode(ours / "b" / "moved"))
    assert dp
    try:
        got = _read_all(dp)
    finally:
        _libc.closedir(dp)
    assert got["."][0] == os.stat(ours / "b" / "moved").st_ino
    assert got[".."][0] == os.stat(ours / "b").st_ino
    assert got[".."][1] == 4        # DT_DIR

    for i in range(300):
        touch(ours / f"n{i:03d}")
    dp = _libc.opendir(os.fsencode(ours))
    try:
        first = _read_all(dp)
        assert first["n007"][1] == 8 and first["a"][1] == 4  # DT_REG, DT_DIR
        touch(ours / "late")
        _libc.rewinddir(dp)
        for _ in range(100):
            _libc.readdir(dp)
        pos = _libc.telldir(dp)
        rest = _read_all(dp)
        _libc.seekdir(dp, pos)
        again = _read_all(dp)
    finally:
        _libc.closedir(dp)
    assert "late" not in first
    assert len(first) == 300 + 4
    assert rest == again and len(rest) == 300 + 5 - 100
    assert "late" in set(os.listdir(ours))


# -- inode lifetime ------------------------------------------------------------

def inode_records(home):
    """Inode records in the mount's LMDB (read-only, works while mounted);
    None when mdb_stat is missing."""
    import re
    import shutil
    if not shutil.which("mdb_stat"):
        return None
    out = subprocess.run(["mdb_stat", "-s", "inodes", str(home / "meta")],
                         capture_output=True, text=True).stdout
    m = re.search(r"Entries: (\d+)", out)
    return int(m.group(1)) if m else None


def wait_records(home, want, timeout=10):
    end = time.monotonic() + timeout
    while True:
        got = inode_records(home)
        if got == want or time.monotonic() > end:
            return got
        if os.geteuid() == 0:       # makes the kernel send its forgets
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("2")
        time.sleep(0.2)


def test_removed_inodes_are_freed(mnt):
    base = inode_records(mnt.home)
    if base is None:
        pytest.skip("mdb_stat (lmdb-utils) is not installed")
    d = mnt.path / f"free{time.monotonic_ns()}"
    d.mkdir()
    for i in range(50):
        touch(d / f"f{i}", b"x" * i)
    os.mkdir(d / "sub")
    os.symlink("f1", d / "link")
    assert len(os.listdir(d)) == 52
    subprocess.run(["ls", "-lR", str(d)], capture_output=True)   # readdirplus
    os.rename(d / "f1", d / "f2")           # replaces an inode
    assert inode_records(mnt.home) >= base + 52
    held = os.open(d / "f3", os.O_RDONLY)
    subprocess.run(["rm", "-rf", str(d)], check=True)
    # f3 stays while open (and its directory while the kernel holds it)
    got = wait_records(mnt.home, base + 1, timeout=3)
    assert got in (base + 1, base + 2), (got, base)
    assert os.read(held, 10) == b"xxx"
    os.close(held)
    assert wait_records(mnt.home, base) == base


def test_unlinked_open_file_freed_at_next_mount(tmp_path, swarm6, need_fuse):
    from conftest import Mount
    m = Mount(tmp_path, "orph")
    try:
        m.init()
        m.mount(swarm6.peers)
        if inode_records(m.home) is None:
            pytest.skip("mdb_stat (lmdb-utils) is not installed")
        touch(m.path / "keep")
        touch(m.path / "gone", b"y" * 100000)
        fd = os.open(m.path / "gone", os.O_RDONLY)
        os.unlink(m.path / "gone")
        m.kill_daemon()                     # a crash: the orphan stays
        for _ in range(50):
            if not m.daemon_pids():
                break
            time.sleep(0.1)
        try:
            os.close(fd)
        except OSError:
            pass
        subprocess.run(["fusermount3", "-u", "-z", str(m.path)],
                       capture_output=True)
        assert inode_records(m.home) == 3   # root, keep, the orphan
        m.mount(swarm6.peers)
        assert inode_records(m.home) == 2
        assert os.listdir(m.path) == ["keep"]
    finally:
        m.cleanup()
