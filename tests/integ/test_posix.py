"""POSIX behaviour of the mount: results and errno of ordinary syscalls.

One swarm and one mount per module; every test works in its own fresh
directory of the mount.
"""

import ctypes
import errno
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import errname, errno_of, module_mount, run_with_timeout

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def mnt(tmp_path_factory, swarm6):
    yield from module_mount(tmp_path_factory, swarm6, name="posix")


@pytest.fixture(scope="module")
def mnt_other(tmp_path_factory, swarm6):
    """A second mount (own home) that other users may use."""
    yield from module_mount(tmp_path_factory, swarm6, name="posixo",
                            opts="allow_other,default_permissions")


_counter = [0]


@pytest.fixture
def d(mnt, request):
    _counter[0] += 1
    p = mnt.path / f"t{_counter[0]}_{request.node.name[:40]}"
    p.mkdir()
    return p


def expect_errno(want, fn, *a, **kw):
    got = errno_of(fn, *a, **kw)
    wants = want if isinstance(want, tuple) else (want,)
    assert got in wants, \
        f"{getattr(fn, '__name__', fn)}{a}: got {errname(got)}, want " \
        f"{' or '.join(errname(w) for w in wants)}"


def write_file(p, data):
    with open(p, "wb") as f:
        f.write(data)


def read_file(p):
    with open(p, "rb") as f:
        return f.read()


# -- data --------------------------------------------------------------------

def test_random_read_write_offsets(d):
    rng = random.Random(1234)
    p = d / "rw"
    size = 6 * MiB
    model = bytearray()
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for _ in range(150):
            off = rng.randrange(size)
            n = rng.choice([1, 7, 4095, 4096, 4097, 65536, 300000, MiB + 3])
            data = rng.randbytes(n)
            assert os.pwrite(fd, data, off) == n
            if len(model) < off:
                model.extend(bytes(off - len(model)))
            model[off:off + n] = data
            if rng.random() < 0.3:
                roff = rng.randrange(len(model))
                rn = rng.randrange(1, 400000)
                assert os.pread(fd, rn, roff) == bytes(model[roff:roff + rn]), \
                    f"pread({rn}, {roff}) differs"
        assert os.fstat(fd).st_size == len(model)
    finally:
        os.close(fd)
    assert os.stat(p).st_size == len(model)
    assert hashlib.sha256(read_file(p)).digest() == hashlib.sha256(model).digest()


def test_sparse_holes_read_zeros(d):
    p = d / "sparse"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"A", 0)
        os.pwrite(fd, b"Z", 10 * MiB)
        os.lseek(fd, 20 * MiB + 5, os.SEEK_SET)
        os.write(fd, b"end")
    finally:
        os.close(fd)
    st = os.stat(p)
    assert st.st_size == 20 * MiB + 8
    data = read_file(p)
    assert data[0:1] == b"A"
    assert data[1:10 * MiB] == bytes(10 * MiB - 1)
    assert data[10 * MiB:10 * MiB + 1] == b"Z"
    assert data[10 * MiB + 1:20 * MiB + 5] == bytes(10 * MiB + 4)
    assert data[-3:] == b"end"


def test_truncate_grow_shrink(d):
    p = d / "tr"
    payload = bytes(range(256)) * 40000   # ~10 MiB, crosses block boundaries
    write_file(p, payload)
    os.truncate(p, 5 * MiB + 17)
    assert os.stat(p).st_size == 5 * MiB + 17
    assert read_file(p) == payload[:5 * MiB + 17]
    os.truncate(p, 100)
    os.truncate(p, 3 * MiB)
    data = read_file(p)
    assert len(data) == 3 * MiB
    assert data[:100] == payload[:100]
    assert data[100:] == bytes(3 * MiB - 100), "old bytes came back after shrink + grow"
    with open(p, "r+b") as f:
        os.ftruncate(f.fileno(), 10)
        assert os.fstat(f.fileno()).st_size == 10
        os.ftruncate(f.fileno(), 4096 * 3 + 1)
        f.seek(0)
        assert f.read() == payload[:10] + bytes(4096 * 3 + 1 - 10)
    os.truncate(p, 0)
    assert read_file(p) == b""
    expect_errno(errno.ENOENT, os.truncate, d / "missing", 10)
    expect_errno(errno.EISDIR, os.truncate, d, 10)
    expect_errno(errno.EINVAL, os.truncate, p, -1)


def test_append_mode(d):
    p = d / "app"
    write_file(p, b"head")
    with open(p, "ab") as a, open(p, "ab") as b:
        a.write(b"1" * 5000)
        a.flush()
        b.write(b"2" * 3)
        b.flush()
        a.write(b"3")
        a.flush()
    assert read_file(p) == b"head" + b"1" * 5000 + b"222" + b"3"
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"tail")
    finally:
        os.close(fd)
    assert read_file(p).endswith(b"3tail")


def test_o_trunc_and_o_excl(d):
    p = d / "t"
    write_file(p, b"x" * 100000)
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert os.stat(p).st_size == 0
    assert read_file(p) == b""
    expect_errno(errno.EEXIST, os.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    expect_errno(errno.ENOENT, os.open, d / "nope", os.O_RDONLY)
    expect_errno(errno.EISDIR, os.open, d, os.O_WRONLY)


def test_fsync_fdatasync(d):
    p = d / "fs"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, os.urandom(3 * MiB))
        os.fsync(fd)
        os.write(fd, b"more")
        os.fdatasync(fd)
    finally:
        os.close(fd)
    assert os.stat(p).st_size == 3 * MiB + 4
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# -- directories -------------------------------------------------------------

def test_mkdir_rmdir_errors(d):
    sub = d / "sub"
    os.mkdir(sub)
    assert stat.S_ISDIR(os.stat(sub).st_mode)
    expect_errno(errno.EEXIST, os.mkdir, sub)
    write_file(sub / "f", b"x")
    expect_errno(errno.ENOTEMPTY, os.rmdir, sub)
    expect_errno(errno.ENOTDIR, os.rmdir, sub / "f")
    expect_errno(errno.ENOTDIR, os.mkdir, sub / "f" / "x")
    expect_errno(errno.ENOTDIR, os.open, sub / "f" / "x", os.O_RDONLY)
    expect_errno(errno.ENOENT, os.rmdir, d / "missing")
    expect_errno(errno.ENOENT, os.mkdir, d / "missing" / "x")
    expect_errno(errno.EEXIST, os.mkdir, sub / "f")
    expect_errno(errno.EISDIR, os.unlink, sub)
    os.unlink(sub / "f")
    os.rmdir(sub)
    assert not sub.exists()
    assert os.listdir(d) == []


def test_dir_nlink_and_listing(d):
    for i in range(3):
        os.mkdir(d / f"s{i}")
    for i in range(50):
        write_file(d / f"f{i:02d}", b"%d" % i)
    assert os.stat(d).st_nlink == 2 + 3
    names = sorted(os.listdir(d))
    assert names == sorted([f"s{i}" for i in range(3)] + [f"f{i:02d}" for i in range(50)])
    with os.scandir(d) as it:
        kinds = {e.name: e.is_dir(follow_symlinks=False) for e in it}
    assert kinds["s1"] and not kinds["f07"]
    os.rmdir(d / "s1")
    assert os.stat(d).st_nlink == 2 + 2


def test_name_too_long(d):
    expect_errno(errno.ENAMETOOLONG, os.open, d / ("n" * 256),
                 os.O_WRONLY | os.O_CREAT, 0o644)
    expect_errno(errno.ENAMETOOLONG, os.mkdir, d / ("n" * 256))
    write_file(d / ("m" * 255), b"ok")
    assert read_file(d / ("m" * 255)) == b"ok"
    expect_errno(errno.ENAMETOOLONG, os.rename, d / ("m" * 255), d / ("r" * 256))


# -- rename ------------------------------------------------------------------

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(a, b, flags):
    r = _libc.renameat2(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD,
                        os.fsencode(str(b)), ctypes.c_uint(flags))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(a))


def test_rename_over_existing_and_across_dirs(d):
    a, b = d / "a", d / "b"
    write_file(a, b"AAA")
    write_file(b, b"BBBBBB")
    ino_a = os.stat(a).st_ino
    os.rename(a, b)
    assert not a.exists()
    assert read_file(b) == b"AAA"
    assert os.stat(b).st_ino == ino_a
    os.mkdir(d / "x")
    os.mkdir(d / "y")
    os.rename(b, d / "x" / "moved")
    assert read_file(d / "x" / "moved") == b"AAA"
    os.rename(d / "x", d / "y" / "x2")          # directory across dirs
    assert read_file(d / "y" / "x2" / "moved") == b"AAA"
    assert os.stat(d / "y").st_nlink == 3
    # errors
    os.mkdir(d / "full")
    write_file(d / "full" / "f", b"")
    os.mkdir(d / "empty")
    expect_errno(errno.ENOTEMPTY, os.rename, d / "empty", d / "full")
    expect_errno(errno.EINVAL, os.rename, d / "y", d / "y" / "x2" / "inside")
    expect_errno(errno.EISDIR, os.rename, d / "full" / "f", d / "empty")
    expect_errno(errno.ENOTDIR, os.rename, d / "empty", d / "full" / "f")
    expect_errno(errno.ENOENT, os.rename, d / "ghost", d / "z")
    # a dir replaces an empty dir
    os.mkdir(d / "e2")
    os.rename(d / "full", d / "e2")
    assert os.listdir(d / "e2") == ["f"]


def test_rename_noreplace(d):
    a, b = d / "a", d / "b"
    write_file(a, b"A")
    write_file(b, b"B")
    expect_errno(errno.EEXIST, renameat2, a, b, RENAME_NOREPLACE)
    assert read_file(a) == b"A" and read_file(b) == b"B"
    renameat2(a, d / "c", RENAME_NOREPLACE)
    assert not a.exists() and read_file(d / "c") == b"A"


def test_rename_exchange(d):
    a, b = d / "a", d / "b"
    write_file(a, b"A" * 10)
    os.mkdir(b)
    write_file(b / "inner", b"I")
    ia, ib = os.stat(a).st_ino, os.stat(b).st_ino
    renameat2(a, b, RENAME_EXCHANGE)
    assert stat.S_ISDIR(os.stat(a).st_mode) and read_file(a / "inner") == b"I"
    assert read_file(b) == b"A" * 10
    assert os.stat(a).st_ino == ib and os.stat(b).st_ino == ia
    expect_errno(errno.ENOENT, renameat2, a, d / "missing", RENAME_EXCHANGE)


def test_rename_open_file(d):
    p = d / "open"
    with open(p, "w+b") as f:
        f.write(b"before")
        f.flush()
        os.rename(p, d / "renamed")
        f.write(b"-after")
        f.flush()
        f.seek(0)
        assert f.read() == b"before-after"
    assert not p.exists()
    assert read_file(d / "renamed") == b"before-after"


# -- links -------------------------------------------------------------------

def test_hard_links(d):
    a = d / "a"
    write_file(a, b"shared")
    os.mkdir(d / "sub")
    b = d / "sub" / "b"
    os.link(a, b)
    sa, sb = os.stat(a), os.stat(b)
    assert sa.st_ino == sb.st_ino
    assert sa.st_nlink == 2 and sb.st_nlink == 2
    with open(b, "r+b") as f:
        f.seek(6)
        f.write(b" content")
    assert read_file(a) == b"shared content"
    expect_errno(errno.EEXIST, os.link, a, b)
    expect_errno(errno.EPERM, os.link, d / "sub", d / "dirlink")
    expect_errno(errno.ENOENT, os.link, d / "none", d / "x")
    os.unlink(a)
    assert os.stat(b).st_nlink == 1
    assert read_file(b) == b"shared content"
    os.link(b, d / "c")
    os.rename(d / "c", b)              # same inode: nothing happens
    assert os.stat(b).st_nlink == 2 and (d / "c").exists()


def test_symlinks(d):
    write_file(d / "target", b"T")
    os.symlink("target", d / "ln")
    os.symlink("/nonexistent/path/for/peerfs", d / "dangling")
    long_target = "x/" * 500 + "end"
    os.symlink(long_target, d / "longln")
    assert os.readlink(d / "ln") == "target"
    assert os.readlink(d / "longln") == long_target
    st = os.lstat(d / "ln")
    assert stat.S_ISLNK(st.st_mode)
    assert st.st_size == len("target")
    assert read_file(d / "ln") == b"T"
    expect_errno(errno.ENOENT, os.open, d / "dangling", os.O_RDONLY)
    expect_errno(errno.EEXIST, os.symlink, "x", d / "ln")
    expect_errno(errno.EINVAL, os.readlink, d / "target")
    os.mkdir(d / "dir")
    os.symlink("../target", d / "dir" / "up")
    assert read_file(d / "dir" / "up") == b"T"
    os.unlink(d / "ln")
    assert (d / "target").exists()


# -- attributes --------------------------------------------------------------

def test_chmod_chown_ctime(d):
    p = d / "f"
    write_file(p, b"x")
    st0 = os.stat(p)
    time.sleep(1.1)
    os.chmod(p, 0o640)
    st1 = os.stat(p)
    assert stat.S_IMODE(st1.st_mode) == 0o640
    assert stat.S_ISREG(st1.st_mode)
    assert st1.st_ctime_ns > st0.st_ctime_ns, "chmod did not change ctime"
    assert st1.st_mtime_ns == st0.st_mtime_ns, "chmod changed mtime"
    os.chmod(p, 0o4755)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o4755
    os.chown(p, 1234, 5678)
    st2 = os.stat(p)
    assert (st2.st_uid, st2.st_gid) == (1234, 5678)
    os.chown(p, -1, 42)
    st3 = os.stat(p)
    assert (st3.st_uid, st3.st_gid) == (1234, 42)
    os.mkdir(d / "dd", 0o700)
    assert stat.S_IMODE(os.stat(d / "dd").st_mode) == 0o700


def test_times(d):
    p = d / "f"
    write_file(p, b"x")
    st0 = os.stat(p)
    time.sleep(1.1)
    with open(p, "ab") as f:
        f.write(b"y")
    st1 = os.stat(p)
    assert st1.st_mtime_ns > st0.st_mtime_ns, "write did not change mtime"
    assert st1.st_ctime_ns > st0.st_ctime_ns, "write did not change ctime"
    os.utime(p, (1000000000, 1200000000))
    st2 = os.stat(p)
    assert st2.st_atime == 1000000000 and st2.st_mtime == 1200000000
    assert st2.st_ctime_ns >= st1.st_ctime_ns
    os.utime(p, ns=(1500000000_123456789, 1600000000_987654321))
    st3 = os.stat(p)
    assert st3.st_mtime_ns // 10**9 == 1600000000
    assert st3.st_atime_ns // 10**9 == 1500000000
    # creating an entry updates the directory's mtime
    dst0 = os.stat(d)
    time.sleep(1.1)
    write_file(d / "new", b"")
    assert os.stat(d).st_mtime_ns > dst0.st_mtime_ns, "create did not change dir mtime"
    os.utime(p)    # now
    assert abs(os.stat(p).st_mtime - time.time()) < 60


def test_mkfifo(d):
    os.mkfifo(d / "fifo", 0o600)
    st = os.lstat(d / "fifo")
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    # it behaves like a pipe (handled by the kernel)
    pid = os.fork()
    if pid == 0:
        try:
            with open(d / "fifo", "wb") as w:
                w.write(b"through the fifo")
        finally:
            os._exit(0)
    with open(d / "fifo", "rb") as r:
        assert r.read() == b"through the fifo"
    os.waitpid(pid, 0)
    os.unlink(d / "fifo")


def test_statvfs(mnt):
    sv = os.statvfs(mnt.path)
    assert sv.f_blocks > 0
    assert sv.f_bsize > 0
    assert sv.f_bfree <= sv.f_blocks
    assert sv.f_namemax >= 255


def test_xattrs(d):
    p = d / "f"
    write_file(p, b"x")
    os.setxattr(p, "user.color", b"blue")
    os.setxattr(p, "user.bin", bytes(range(256)))
    assert os.getxattr(p, "user.color") == b"blue"
    assert os.getxattr(p, "user.bin") == bytes(range(256))
    assert set(os.listxattr(p)) >= {"user.color", "user.bin"}
    expect_errno(errno.EEXIST, os.setxattr, p, "user.color", b"red", os.XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, p, "user.none", b"v", os.XATTR_REPLACE)
    os.setxattr(p, "user.color", b"red", os.XATTR_REPLACE)
    assert os.getxattr(p, "user.color") == b"red"
    os.setxattr(p, "user.empty", b"")
    assert os.getxattr(p, "user.empty") == b""
    os.removexattr(p, "user.color")
    expect_errno(errno.ENODATA, os.getxattr, p, "user.color")
    expect_errno(errno.ENODATA, os.removexattr, p, "user.color")
    assert "user.color" not in os.listxattr(p)
    os.setxattr(d, "user.ondir", b"1")
    assert os.getxattr(d, "user.ondir") == b"1"
    # xattrs follow the inode through rename and hard link
    os.rename(p, d / "g")
    os.link(d / "g", d / "h")
    assert os.getxattr(d / "h", "user.bin") == bytes(range(256))


# -- open-file semantics -----------------------------------------------------

def test_unlink_open_file(d):
    p = d / "f"
    data = os.urandom(5 * MiB + 3)
    write_file(p, data)
    with open(p, "r+b") as f:
        os.unlink(p)
        assert not p.exists()
        assert p.name not in os.listdir(d)
        assert os.fstat(f.fileno()).st_nlink == 0
        assert f.read() == data
        f.write(b"appended")
        f.seek(0)
        assert f.read() == data + b"appended"
    write_file(p, b"new")          # the name is free again
    assert read_file(p) == b"new"


def test_concurrent_writers(d):
    n, size = 8, 3 * MiB
    datas = [random.Random(i).randbytes(size) for i in range(n)]
    errs = []

    def writer(i):
        try:
            with open(d / f"w{i}", "wb") as f:
                for off in range(0, size, 100000):
                    f.write(datas[i][off:off + 100000])
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append((i, repr(e)))

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not any(t.is_alive() for t in ts), "writer threads hung"
    assert not errs, errs
    for i in range(n):
        assert read_file(d / f"w{i}") == datas[i], f"file w{i} differs"


def test_concurrent_writers_same_file(d):
    """Threads writing disjoint ranges of one file."""
    n, part = 6, MiB + 1000
    p = d / "shared"
    with open(p, "wb") as f:
        f.truncate(n * part)
    datas = [os.urandom(part) for _ in range(n)]

    def writer(i):
        fd = os.open(p, os.O_WRONLY)
        try:
            for off in range(0, part, 65536):
                os.pwrite(fd, datas[i][off:off + 65536], i * part + off)
        finally:
            os.close(fd)

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert read_file(p) == b"".join(datas)


# -- tools -------------------------------------------------------------------

def _make_local_tree(root):
    rng = random.Random(7)
    root.mkdir()
    for i in range(4):
        sub = root / f"dir{i}" / "deeper"
        sub.mkdir(parents=True)
        for j in range(10):
            write_file(sub / f"file{j}.dat", rng.randbytes(rng.choice([0, 10, 5000, 300000])))
    write_file(root / "big", rng.randbytes(9 * MiB))
    os.symlink("dir0/deeper/file1.dat", root / "link")
    os.link(root / "big", root / "big.hard")
    os.chmod(root / "dir1", 0o750)
    os.utime(root / "dir2" / "deeper" / "file3.dat", (1234567890, 1234567890))


def _run(cmd, cwd=None, timeout=300, env=None):
    cp = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                        shell=isinstance(cmd, str), env=env)
    assert cp.returncode == 0, f"{cmd} exited {cp.returncode}:\n{cp.stdout[-2000:]}{cp.stderr[-2000:]}"
    return cp


def test_tar_round_trip(d, tmp_path):
    src = tmp_path / "src"
    _make_local_tree(src)
    _run(f"tar -C '{src}' -cf - . | tar -C '{d}' -xpf -")
    _run(["diff", "-r", "--no-dereference", str(src), str(d)])
    back = tmp_path / "back"
    back.mkdir()
    _run(f"tar -C '{d}' -cf - . | tar -C '{back}' -xpf -")
    _run(["diff", "-r", "--no-dereference", str(src), str(back)])
    assert os.stat(d / "big").st_ino == os.stat(d / "big.hard").st_ino
    assert os.stat(d / "dir2" / "deeper" / "file3.dat").st_mtime == 1234567890
    assert stat.S_IMODE(os.stat(d / "dir1").st_mode) == 0o750


def test_git_in_mount(d, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = dict(os.environ, HOME=str(tmp_path), GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org", GIT_CONFIG_NOSYSTEM="1")
    repo = d / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], cwd=repo, env=env)
    for i in range(20):
        write_file(repo / f"f{i}.txt", (f"line {i}\n" * (i * 100 + 1)).encode())
    (repo / "sub").mkdir()
    write_file(repo / "sub" / "blob", os.urandom(2 * MiB))
    _run(["git", "add", "-A"], cwd=repo, env=env)
    _run(["git", "commit", "-q", "-m", "first"], cwd=repo, env=env)
    write_file(repo / "f3.txt", b"changed\n")
    _run(["git", "commit", "-q", "-am", "second"], cwd=repo, env=env)
    log = _run(["git", "log", "--oneline"], cwd=repo, env=env).stdout
    assert len(log.splitlines()) == 2, log
    _run(["git", "fsck", "--full"], cwd=repo, env=env)
    st = _run(["git", "status", "--porcelain"], cwd=repo, env=env).stdout
    assert st == "", st


def test_editor_style_save(d):
    target = d / "document.txt"
    write_file(target, b"version 1\n")
    for v in range(2, 6):
        tmp = d / ".document.txt.swp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, f"version {v}\n".encode() * 1000)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target)
        assert read_file(target) == f"version {v}\n".encode() * 1000
    assert os.listdir(d) == ["document.txt"]


# -- other users (allow_other, default_permissions) ---------------------------

def as_user(uid, gid, cwd, ops):
    """Run ops (list of (name, path[, arg])) in a forked child with the given
    ids; returns the list of errnos (0 = ok).  The child starts in cwd and
    uses paths relative to it: the pytest tmp dirs above the mountpoint are
    0700, so another user could not walk down to it."""
    def rel(x):
        return os.path.relpath(x, cwd) if isinstance(x, Path) else x
    ops = [tuple(rel(x) for x in op) for op in ops]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = []
        try:
            os.close(r)
            os.chdir(cwd)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            for op in ops:
                kind, path = op[0], op[1]
                try:
                    if kind == "read":
                        with open(path, "rb") as f:
                            f.read()
                    elif kind == "write":
                        with open(path, "ab") as f:
                            f.write(b"x")
                    elif kind == "create":
                        with open(path, "wb") as f:
                            f.write(op[2] if len(op) > 2 else b"mine")
                    elif kind == "unlink":
                        os.unlink(path)
                    elif kind == "rename":
                        os.rename(path, op[2])
                    elif kind == "chmod":
                        os.chmod(path, op[2])
                    elif kind == "listdir":
                        os.listdir(path)
                    elif kind == "stat":
                        os.stat(path)
                    res.append(0)
                except OSError as e:
                    res.append(e.errno)
            os.write(w, json.dumps(res).encode())
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
    return json.loads(b"".join(chunks) or b"null")


def test_other_user_permissions(mnt_other):
    base = mnt_other.path / f"perm{os.getpid()}_{time.monotonic_ns()}"
    base.mkdir()
    os.chmod(base, 0o755)
    secret = base / "secret"
    write_file(secret, b"root only")
    os.chmod(secret, 0o600)
    public = base / "public"
    write_file(public, b"everyone")
    os.chmod(public, 0o644)
    sticky = base / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    closed = base / "closed"
    closed.mkdir()
    os.chmod(closed, 0o700)

    res = as_user(1000, 1000, base, [
        ("read", secret), ("read", public), ("write", public),
        ("create", base / "newfile"), ("unlink", public),
        ("listdir", closed), ("stat", closed / "x"),
        ("create", sticky / "by1000"), ("chmod", secret, 0o666),
    ])
    want = [errno.EACCES, 0, errno.EACCES, errno.EACCES, errno.EACCES,
            errno.EACCES, errno.EACCES, 0, errno.EPERM]
    labels = ["read 0600 root file", "read 0644 file", "write 0644 root file",
              "create in root 0755 dir", "unlink in root 0755 dir",
              "list 0700 root dir", "stat in 0700 root dir",
              "create in sticky 1777 dir", "chmod root's file"]
    bad = [f"{l}: got {errname(g)}, want {errname(w)}"
           for l, g, w in zip(labels, res, want) if g != w]
    assert not bad, "\n".join(bad)
    st = os.stat(sticky / "by1000")
    assert (st.st_uid, st.st_gid) == (1000, 1000), "new file not owned by its creator"

    res2 = as_user(1001, 1001, base, [
        ("unlink", sticky / "by1000"), ("rename", sticky / "by1000", sticky / "stolen"),
        ("create", sticky / "by1001"), ("unlink", sticky / "by1001"),
    ])
    assert res2[0] in (errno.EPERM, errno.EACCES), \
        f"deleting another user's file in a sticky dir: {errname(res2[0])}"
    assert res2[1] in (errno.EPERM, errno.EACCES), \
        f"renaming another user's file in a sticky dir: {errname(res2[1])}"
    assert res2[2:] == [0, 0], [errname(e) for e in res2[2:]]
    assert (sticky / "by1000").exists()
    res3 = as_user(1000, 1000, base, [("unlink", sticky / "by1000")])
    assert res3 == [0]


# -- more everyday patterns --------------------------------------------------

def test_mmap_shared_write_and_read(d):
    import mmap
    p = d / "mm"
    write_file(p, bytes(3 * MiB))
    with open(p, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 0)
        try:
            mm[5:10] = b"hello"
            mm[2 * MiB:2 * MiB + 5] = b"world"
            mm.flush()
        finally:
            mm.close()
    data = read_file(p)
    assert data[5:10] == b"hello" and data[2 * MiB:2 * MiB + 5] == b"world"
    assert data.count(0) == 3 * MiB - 10
    with open(p, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            assert mm[2 * MiB:2 * MiB + 5] == b"world"
        finally:
            mm.close()


def test_big_directory_listing_and_rmtree(d):
    big = d / "big"
    big.mkdir()
    n = 1500
    for i in range(n):
        fd = os.open(big / f"entry-{i:05d}-{'x' * (i % 40)}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
    names = os.listdir(big)
    assert len(names) == n and len(set(names)) == n
    # delete while iterating: every entry must be seen exactly once
    seen = []
    with os.scandir(big) as it:
        for e in it:
            seen.append(e.name)
            os.unlink(e.path)
    assert sorted(seen) == sorted(names)
    assert os.listdir(big) == []
    os.rmdir(big)


def test_offsets_beyond_4gib(d):
    p = d / "huge-sparse"
    off = 5 * 1024 * MiB + 12345
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"far away", off)
        assert os.fstat(fd).st_size == off + 8
        assert os.pread(fd, 8, off) == b"far away"
        assert os.pread(fd, 16, off - 8) == bytes(8) + b"far away"
        os.ftruncate(fd, off + 4)
        assert os.pread(fd, 100, off) == b"far "
    finally:
        os.close(fd)
    assert os.stat(p).st_size == off + 4
