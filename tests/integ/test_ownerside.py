"""Owner-side security (issue 14): what the mount daemon keeps of the
passphrase, the modes of the home, who may read the control attributes,
and fragments flipped on the way back from suppliers."""
import hashlib
import os
import socket
import stat
import struct
import threading

import pytest

from conftest import run_peerfs, run_with_timeout, wait_for

PASSPHRASE = "ownerside correct horse battery"


def test_passphrase_not_in_daemon_environ(make_mount):
    """PEERFS_PASSPHRASE is wiped and unset once read: the mount daemon's
    /proc/PID/environ (its initial environment block, which unsetenv()
    alone does not change) shows neither the value nor the name."""
    m = make_mount("env")
    m.init(passphrase=PASSPHRASE)
    m.mount([])                     # env PEERFS_PASSPHRASE (conftest)
    pid = m.daemon_pid()
    assert pid, "no mount daemon found"
    env = open(f"/proc/{pid}/environ", "rb").read()
    assert env, "empty environ: the check would prove nothing"
    assert b"PATH=" in env          # the rest of the environment is there
    assert PASSPHRASE.encode() not in env
    assert PASSPHRASE[:12].encode() not in env
    assert b"PEERFS_PASSPHRASE" not in env
    (m.path / "f").write_bytes(b"still works")
    assert (m.path / "f").read_bytes() == b"still works"


def test_home_modes(make_mount):
    """The home is 0700 (an existing looser one is tightened at mount),
    mount.log and mount.pid are 0600 (a looser mount.log too)."""
    m = make_mount("modes")
    m.init()
    assert stat.S_IMODE(os.stat(m.home).st_mode) == 0o700
    os.chmod(m.home, 0o755)
    (m.home / "mount.log").write_text("")
    os.chmod(m.home / "mount.log", 0o644)
    m.mount([])
    assert stat.S_IMODE(os.stat(m.home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(m.home / "mount.log").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(m.home / "mount.pid").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(m.home / "key").st_mode) == 0o600
    # No supplier: the home's first version cannot be published, so a
    # plain umount would wait for one (--timeout); --force, as offline.
    cp = run_peerfs(["umount", "--force", m.path])
    assert cp.returncode == 0, cp.stderr
    assert not m.is_mounted()
    # A home made loose again is tightened by the next mount too; the
    # log the daemon just wrote stays 0600.
    os.chmod(m.home, 0o711)
    m.mount([])
    assert stat.S_IMODE(os.stat(m.home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(m.home / "mount.log").st_mode) == 0o600


# The child opens the root as root, then becomes `nobody` and asks through
# the open descriptor (the pytest folders above the mountpoint are 0700).
AS_NOBODY = r"""
import errno, json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
out = {}
for name in ("user.peerfs.status", "user.peerfs.status.text",
             "user.peerfs.versions", "user.peerfs.check.report",
             "user.test"):
    try:
        os.getxattr(fd, name)
        out[name] = 0
    except OSError as e:
        out[name] = e.errno
try:
    os.setxattr(fd, "user.peerfs.sync", b"1")
    out["set sync"] = 0
except OSError as e:
    out["set sync"] = e.errno
print(json.dumps(out))
"""


def test_control_attributes_owner_only(make_mount):
    """With -o allow_other any local user reaches the root: the control
    attributes still answer only the mounting uid (and root)."""
    import errno
    import json
    m = make_mount("ctl")
    m.init()
    m.mount([], opts="allow_other")
    os.setxattr(m.path, "user.test", b"plain attribute")
    assert b'"suppliers"' in os.getxattr(m.path, "user.peerfs.status")
    cp = run_with_timeout(AS_NOBODY, args=[m.path])
    assert cp.returncode == 0, cp.stderr
    got = json.loads(cp.stdout)
    # nobody does reach the file system (so EACCES below is ours) ...
    assert got["user.test"] == 0, got
    # ... but not its control attributes.
    for name in ("user.peerfs.status", "user.peerfs.status.text",
                 "user.peerfs.versions", "user.peerfs.check.report",
                 "set sync"):
        assert got[name] == errno.EACCES, (name, got)
    # root still may.
    assert os.getxattr(m.path, "user.peerfs.status.text")


# ---- fragments flipped on the way back -------------------------------------

REPLY_BYTES = 8 + 32 + 32 + 64 + 24     # crypto.h CR_HS_REPLY_BYTES


class FlipProxy:
    """A TCP proxy in front of one supplier that flips one bit in the bulk
    (fragment bytes, not MAC'd on the wire) of the first `flips` distinct
    GET_OK records it carries back; the same fragment sent again passes
    untouched, as a one-off fault on the line would."""

    def __init__(self, upstream_port, flips):
        self.up = upstream_port
        self.left = flips
        self.flipped = 0
        self.seen = set()
        self.lock = threading.Lock()
        self.socks = []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.up))
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self._pipe, args=(c, u),
                             daemon=True).start()
            threading.Thread(target=self._back, args=(u, c),
                             daemon=True).start()

    @staticmethod
    def _read(s, n):
        b = bytearray()
        while len(b) < n:
            chunk = s.recv(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return bytes(b)

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _back(self, u, c):
        try:
            c.sendall(self._read(u, REPLY_BYTES))
            while True:
                hdr = self._read(u, 8)
                hl, bl = struct.unpack(">II", hdr)
                head = self._read(u, hl)
                bulk = bytearray(self._read(u, bl)) if bl else bytearray()
                if bl:
                    h = hashlib.blake2b(bulk).digest()
                    with self.lock:
                        if self.left > 0 and h not in self.seen:
                            self.seen.add(h)
                            self.left -= 1
                            self.flipped += 1
                            bulk[bl // 2] ^= 0x10
                c.sendall(hdr + head + bytes(bulk))
        except (OSError, EOFError, struct.error):
            pass
        for s in (u, c):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.ls.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_flipped_fragments_fire_nobody(make_swarm, make_mount):
    """Three fragments of one supplier flipped on the way back (the
    firing threshold) cost a second fetch each, no offence: the data
    reads back right, every supplier stays, none is charged."""
    sw = make_swarm(6)
    proxies = [FlipProxy(sw.ports[i], 3) for i in range(6)]
    try:
        m = make_mount("flip")
        m.init()
        m.mount([p.address for p in proxies], ec="4+2", block_size="256K")
        ref = os.urandom(3 << 20)               # 12 blocks, 48 fetches
        (m.path / "f").write_bytes(ref)
        m.sync()
        m.drop_cache()
        assert (m.path / "f").read_bytes() == ref
        flips = [p.flipped for p in proxies]
        assert sum(flips) >= 3, f"the proxies flipped nothing: {flips}"
        assert max(flips) == 3, f"no supplier had 3 flipped: {flips}"
        st = m.status_json()
        for s in st["suppliers"]:
            assert s["state"] != "dead", (s, flips, m.log_tail())
            assert s["bad_fragments"] == 0, (s, flips)
        assert "fetching it again" in m.log_text()
        assert "fired" not in m.log_text()
    finally:
        for p in proxies:
            p.close()
