"""Randomized model test: the same random operations on the mount and on a
reference directory on local disk must give the same results (including
the errno of failures) and the same tree.

Replay a failure with PEERFS_SEED=<seed printed in the failure message>;
PEERFS_MODEL_OPS sets the number of operations (default 3000).
"""

import errno
import hashlib
import os
import random
import stat
import time
from pathlib import Path

import pytest

from conftest import Mount, errname

N_OPS = int(os.environ.get("PEERFS_MODEL_OPS", "3000"))
BATCH = int(os.environ.get("PEERFS_MODEL_BATCH", "200"))
BLOCK = 64 * 1024
MAX_OFF = 2 * 1024 * 1024 + 5
MAX_LEN = 160 * 1024

DIRS = ["d0", "d1", "d2"]
FILES = ["f0", "f1", "f2", "f3", "f4"]


def rand_path(rng, kind="f"):
    """Mostly files named f*, dirs named d*; sometimes the other kind, so
    that EISDIR / ENOTDIR / EEXIST cases happen too."""
    depth = rng.choice([0, 0, 1, 1, 1, 2])
    parts = [rng.choice(DIRS) for _ in range(depth)]
    if rng.random() < 0.08:
        kind = "d" if kind == "f" else "f"
    parts.append(rng.choice(FILES if kind == "f" else DIRS))
    return "/".join(parts)


def rand_offset(rng):
    r = rng.random()
    if r < 0.35:     # right around a block boundary
        return max(0, rng.randrange(0, MAX_OFF // BLOCK + 1) * BLOCK + rng.randint(-3, 3))
    if r < 0.5:
        return rng.randrange(0, 4096)
    return rng.randrange(0, MAX_OFF)


def rand_len(rng):
    r = rng.random()
    if r < 0.2:
        return rng.randint(1, 16)
    if r < 0.35:
        return BLOCK + rng.randint(-2, 2)
    return rng.randint(1, MAX_LEN)


class Side:
    """One of the two trees; every op returns (errno or 0, result)."""

    def __init__(self, root):
        self.root = Path(root)

    def p(self, rel):
        return str(self.root / rel)

    def run(self, op):
        kind = op[0]
        try:
            return 0, getattr(self, "op_" + kind)(*op[1:])
        except OSError as e:
            return e.errno, None

    def op_write(self, rel, off, data):
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            n = os.pwrite(fd, data, off)
        finally:
            os.close(fd)
        return n

    def op_append(self, rel, data):
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            n = os.write(fd, data)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        return n, size

    def op_truncate(self, rel, size):
        os.truncate(self.p(rel), size)

    def op_ftrunc_write(self, rel, size, off, data):
        """Open O_RDWR, ftruncate, write, read back through the same fd."""
        fd = os.open(self.p(rel), os.O_RDWR)
        try:
            os.ftruncate(fd, size)
            os.pwrite(fd, data, off)
            back = os.pread(fd, len(data) + 10, off)
        finally:
            os.close(fd)
        return hashlib.sha256(back).hexdigest()

    def op_otrunc(self, rel, data):
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def op_read(self, rel, off, n):
        fd = os.open(self.p(rel), os.O_RDONLY)
        try:
            return hashlib.sha256(os.pread(fd, n, off)).hexdigest()
        finally:
            os.close(fd)

    def op_rename(self, a, b):
        os.rename(self.p(a), self.p(b))

    def op_unlink(self, rel):
        os.unlink(self.p(rel))

    def op_link(self, a, b):
        os.link(self.p(a), self.p(b))

    def op_mkdir(self, rel):
        os.mkdir(self.p(rel))

    def op_rmdir(self, rel):
        os.rmdir(self.p(rel))

    def op_stat(self, rel):
        st = os.lstat(self.p(rel))
        return (stat.S_IFMT(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else None,
                st.st_nlink if stat.S_ISREG(st.st_mode) else None)

    def op_listdir(self, rel):
        return sorted(os.listdir(self.p(rel)))


def random_op(rng):
    r = rng.random()
    if r < 0.30:
        return ("write", rand_path(rng), rand_offset(rng), rng.randbytes(rand_len(rng)))
    if r < 0.37:
        return ("append", rand_path(rng), rng.randbytes(rand_len(rng)))
    if r < 0.44:
        return ("truncate", rand_path(rng), rand_offset(rng))
    if r < 0.48:
        return ("ftrunc_write", rand_path(rng), rand_offset(rng), rand_offset(rng),
                rng.randbytes(rand_len(rng)))
    if r < 0.51:
        return ("otrunc", rand_path(rng), rng.randbytes(rng.choice([0, 5, 3000, BLOCK + 1])))
    if r < 0.60:
        return ("read", rand_path(rng), rand_offset(rng), rand_len(rng) * 2)
    if r < 0.66:
        return ("rename", rand_path(rng), rand_path(rng))
    if r < 0.69:
        return ("rename", rand_path(rng, "d"), rand_path(rng, "d"))
    if r < 0.75:
        return ("unlink", rand_path(rng))
    if r < 0.81:
        return ("link", rand_path(rng), rand_path(rng))
    if r < 0.88:
        return ("mkdir", rand_path(rng, "d"))
    if r < 0.93:
        return ("rmdir", rand_path(rng, "d"))
    if r < 0.95:
        return ("stat", rand_path(rng))
    if r < 0.97:
        # A file named like a top directory makes every path under it
        # ENOTDIR: without this, some seeds spent most of the run there.
        return ("unlink", rng.choice(DIRS))
    return ("listdir", rng.choice(["."] + DIRS + ["d0/d1", "d1/d2"]))


def describe(op):
    return "(" + ", ".join(f"<{len(x)} bytes>" if isinstance(x, bytes) else repr(x)
                           for x in op) + ")"


def snapshot(root):
    """{relpath: (type, size, nlink, sha256)} of the whole tree."""
    out = {}
    root = str(root)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None, None, None)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    while True:
                        b = f.read(1 << 20)
                        if not b:
                            break
                        h.update(b)
                out[rel] = ("file", st.st_size, st.st_nlink, h.hexdigest())
            else:
                out[rel] = (f"mode {stat.S_IFMT(st.st_mode):o}", None, None, None)
    return out


def compare_trees(ref, mnt, ctx):
    a, b = snapshot(ref), snapshot(mnt)
    if a == b:
        return
    diffs = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            diffs.append(f"  {k}: reference {a.get(k)} mount {b.get(k)}")
    pytest.fail(f"{ctx}: trees differ ({len(diffs)} entries):\n" + "\n".join(diffs[:30]),
                pytrace=False)


@pytest.mark.parametrize("cache_size", [None, "1M"], ids=["cache-default", "cache-1M"])
def test_random_model(tmp_path, make_swarm, make_mount, cache_size):
    """cache-1M: clean blocks are evicted all the time, so reads in the
    middle of the run come back from the suppliers too."""
    seed = int(os.environ.get("PEERFS_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"PEERFS_SEED={seed} PEERFS_MODEL_OPS={N_OPS}")
    rng = random.Random(seed)
    sw = make_swarm(6)
    m = make_mount("model")
    m.init()
    m.mount(sw.peers, block_size="64K", cache_size=cache_size)
    ref = tmp_path / "ref"
    ref.mkdir()
    work = m.path / "w"
    work.mkdir()
    sides = (Side(ref), Side(work))
    recent = []
    t0 = time.monotonic()
    counts = {}
    remounted = False
    for i in range(N_OPS):
        op = random_op(rng)
        ra = sides[0].run(op)
        rb = sides[1].run(op)
        recent.append(f"#{i} {describe(op)} -> {errname(ra[0])}")
        recent = recent[-25:]
        key = (op[0], errname(ra[0]))
        counts[key] = counts.get(key, 0) + 1
        if ra != rb:
            pytest.fail(
                f"PEERFS_SEED={seed}: op #{i} {describe(op)}\n"
                f"  reference: {errname(ra[0])} {ra[1]!r}\n  mount:     {errname(rb[0])} {rb[1]!r}\n"
                f"recent ops:\n  " + "\n  ".join(recent), pytrace=False)
        if (i + 1) % BATCH == 0 or i + 1 == N_OPS:
            compare_trees(ref, work, f"PEERFS_SEED={seed} after op #{i}\nrecent ops:\n  "
                          + "\n  ".join(recent) + "\n")
            r = rng.random()   # drawn always, so a replay takes the same path
            if r < 0.25:
                m.sync()
                recent.append(f"#{i} peerfs sync")
            elif not remounted and i + 1 >= N_OPS // 2:
                # Once, half way: a plain umount + mount in the middle.
                remounted = True
                m.umount()
                m.mount(sw.peers, block_size="64K", cache_size=cache_size)
                recent.append(f"#{i} umount + mount")
                compare_trees(ref, work, f"PEERFS_SEED={seed} after remount at op #{i}")
    ok = sum(v for (k, e), v in counts.items() if e == "OK")
    print(f"{N_OPS} ops in {time.monotonic() - t0:.1f} s, {ok} succeeded; "
          + ", ".join(f"{k}:{e}={v}" for (k, e), v in sorted(counts.items())))
    # The op mix must really exercise the filesystem, not only fail.
    assert ok > N_OPS // 3, f"PEERFS_SEED={seed}: only {ok} ops succeeded: {counts}"

    m.sync()
    m.umount()
    m.mount(sw.peers, block_size="64K", cache_size="0")
    compare_trees(ref, m.path / "w", f"PEERFS_SEED={seed} after umount + cold remount")
