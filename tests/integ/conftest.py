"""Shared helpers for the peerfs integration tests.

Only the command-line contract of ./peerfs is used (see the README):
    peerfs init / supplier / mount / sync / umount / status.

Helpers (importable as `from conftest import ...`, or through fixtures):

    Swarm(base_dir, n, extra=[args], extra_for={i: [args]})
                            n supplier processes on 127.0.0.1, free ports
                            (extra_for: arguments for supplier i only).
        .start(i) .stop(i) (SIGTERM + wait) .kill(i) (SIGKILL) .close()
        .start_all() .peers (list of "127.0.0.1:PORT") .peer_args()
        .stores[i] .homes[i] .ports[i] .alive(i) .log_text(i)
        .index_of("127.0.0.1:PORT") .fragment_files(i)
    Mount(base_dir, name="m")  a customer home + mountpoint.
        .init(passphrase=None) .mount(peers, ec=, block_size=, cache_size=,
        opts=, extra=, env=) .path .home .sync() .umount() .status_json()
        .is_mounted() .log_text() .cleanup()
        .drop_cache() (mount's block cache + kernel page cache)
    run_peerfs(args, ...) -> subprocess.CompletedProcess (text, captured)
    fragment_files(store)   fragment files on a supplier's disk
    flip_bytes(path)        silent bit rot in one file (size, mtime kept)
    run_floor_tool(tool, *args)  a bench floor tool run (CompletedProcess)
    floor_figures(tool, *args)   its figures, {name: value}
    drop_kernel_cache()

Fixtures:
    peerfs_bin      path of the binary (fails the test when missing)
    need_fuse       skips when /dev/fuse is missing
    make_swarm(n=6, **kw)    function-scoped factory, cleaned up after the test
    make_mount(name="m")     function-scoped factory of Mount (not mounted yet)
    swarm6          module-scoped running swarm of 6 suppliers

Everything started is registered and torn down in finalizers even when the
test fails: lazy fusermount3 -u -z, SIGKILL of the mount daemon (from
H/mount.pid or pgrep on the home path) and of every supplier.  A watchdog
kills the daemons of a test that runs longer than PEERFS_TEST_TIMEOUT
(default 900 s) so a hung FUSE request fails the test instead of blocking
the whole run.
"""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# PEERFS_BIN: run the tests against another binary (e.g. a stand-in).
PEERFS = Path(os.environ.get("PEERFS_BIN") or ROOT / "peerfs").resolve()
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

CMD_TIMEOUT = float(os.environ.get("PEERFS_CMD_TIMEOUT", "180"))
TEST_TIMEOUT = float(os.environ.get("PEERFS_TEST_TIMEOUT", "900"))

# Every live Swarm / Mount, so that the watchdog and the session finalizer
# can reach them.
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _register(obj):
    with _LIVE_LOCK:
        _LIVE.add(obj)


def _unregister(obj):
    with _LIVE_LOCK:
        _LIVE.discard(obj)


def clean_env(extra=None):
    env = dict(os.environ)
    for k in ("PEERFS_HOME", "PEERFS_PASSPHRASE"):
        env.pop(k, None)
    env.setdefault("LC_ALL", "C")
    if extra:
        env.update(extra)
    return env


def require_binary():
    if not (PEERFS.is_file() and os.access(PEERFS, os.X_OK)):
        pytest.fail(f"{PEERFS} does not exist or is not executable "
                    f"(run `make peerfs`)", pytrace=False)
    return PEERFS


def run_peerfs(args, timeout=CMD_TIMEOUT, env=None, check=False, input=None):
    """Run ./peerfs ARGS; returns CompletedProcess with text stdout/stderr.
    A timeout fails the test (after the process is killed)."""
    require_binary()
    cmd = [str(PEERFS)] + [str(a) for a in args]
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True,
                            errors="replace", timeout=timeout,
                            env=clean_env(env), input=input,
                            stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`{' '.join(cmd)}` did not return within {timeout} s; "
                    f"stderr so far: {e.stderr!r}", pytrace=False)
    if check and cp.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {cp.returncode}\n"
                    f"stdout: {cp.stdout[-3000:]}\nstderr: {cp.stderr[-3000:]}",
                    pytrace=False)
    return cp


def mounted_paths():
    out = set()
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    out.add(parts[1].replace("\\040", " "))
    except OSError:
        pass
    return out


def is_mounted(path):
    return str(Path(path)) in mounted_paths()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _listen_inodes(port):
    """Socket inodes listening on 127.0.0.1:port or 0.0.0.0:port."""
    inodes = set()
    want = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if p[1] in want and p[3] == "0A":
                    inodes.add(p[9])
    except OSError:
        pass
    return inodes


def pid_listens(pid, port):
    """True when process pid (or one of its children) owns the listening
    socket on port; None when it can't be told."""
    inodes = _listen_inodes(port)
    if not inodes:
        return False
    pids = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                              text=True).stdout.split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                except OSError:
                    continue
                m = re.match(r"socket:\[(\d+)\]", link)
                if m and m.group(1) in inodes:
                    return True
        except OSError:
            continue
    return False


def ere_escape(s):
    return re.sub(r"([.\[\]{}()*+?^$|\\])", r"\\\1", s)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def _wait_pid_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


class Swarm:
    """n supplier processes `peerfs supplier` on 127.0.0.1."""

    START_TIMEOUT = 20.0

    def __init__(self, base, n=6, quota=None, extra=None, extra_for=None):
        self.base = Path(base)
        self.n = n
        self.quota = quota
        self.extra = list(extra or [])
        # extra_for: {i: [args]} for supplier i only (e.g. --test-lie).
        self.extra_for = {int(k): list(v) for k, v in (extra_for or {}).items()}
        self.homes = [self.base / f"sup{i}" / "home" for i in range(n)]
        self.stores = [self.base / f"sup{i}" / "store" for i in range(n)]
        self.logs = [self.base / f"sup{i}" / "supplier.log" for i in range(n)]
        self.ports = [None] * n
        self.procs = [None] * n
        for i in range(n):
            (self.base / f"sup{i}").mkdir(parents=True, exist_ok=True)
            self.stores[i].mkdir(parents=True, exist_ok=True)
        _register(self)

    @property
    def peers(self):
        return [f"127.0.0.1:{p}" for p in self.ports]

    def address(self, i):
        return f"127.0.0.1:{self.ports[i]}"

    def peer_args(self, indices=None):
        out = []
        for i in (range(self.n) if indices is None else indices):
            out += ["--peer", self.address(i)]
        return out

    def index_of(self, address):
        """Swarm index of "127.0.0.1:PORT", or None."""
        for i, p in enumerate(self.ports):
            if p is not None and address == f"127.0.0.1:{p}":
                return i
        return None

    def fragment_files(self, i):
        return fragment_files(self.stores[i])

    def alive(self, i):
        p = self.procs[i]
        return p is not None and p.poll() is None

    def log_text(self, i):
        try:
            return self.logs[i].read_text(errors="replace")
        except OSError:
            return ""

    def _spawn(self, i, port):
        cmd = [str(PEERFS), "supplier", "--home", str(self.homes[i]),
               "--listen", f"127.0.0.1:{port}", "--store", str(self.stores[i])]
        if self.quota:
            cmd += ["--quota", str(self.quota)]
        cmd += self.extra
        cmd += self.extra_for.get(i, [])
        log = open(self.logs[i], "ab")
        log.write(f"=== {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=clean_env(),
                                    start_new_session=True)
        finally:
            log.close()

    def start(self, i):
        """Start supplier i (again, with the same home, store and port)."""
        require_binary()
        if self.alive(i):
            return
        fixed = self.ports[i] is not None
        attempts = 8 if fixed else 5
        last = ""
        for attempt in range(attempts):
            port = self.ports[i] if fixed else free_port()
            proc = self._spawn(i, port)
            self.procs[i] = proc
            end = time.monotonic() + self.START_TIMEOUT
            while time.monotonic() < end:
                if proc.poll() is not None:
                    break
                if port_accepts(port) and pid_listens(proc.pid, port):
                    self.ports[i] = port
                    return
                time.sleep(0.05)
            if proc.poll() is None:
                # Neither exited nor listening in time: give up on it.
                self._signal(i, signal.SIGKILL)
                proc.wait(5)
                last = f"supplier {i} not listening on {port} after {self.START_TIMEOUT} s"
            else:
                last = f"supplier {i} exited with {proc.returncode} on port {port}"
            self.procs[i] = None
            time.sleep(0.3 if fixed else 0.05)
        tail = "\n".join(self.log_text(i).splitlines()[-15:])
        pytest.fail(f"{last}\nlog {self.logs[i]}:\n{tail}", pytrace=False)

    def start_all(self):
        for i in range(self.n):
            self.start(i)
        return self

    def _signal(self, i, sig):
        p = self.procs[i]
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, i, timeout=20):
        """SIGTERM supplier i and wait for it; SIGKILL if it hangs (and fail)."""
        p = self.procs[i]
        if p is None:
            return
        self._signal(i, signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(i, signal.SIGKILL)
            p.wait(10)
            self.procs[i] = None
            pytest.fail(f"supplier {i} did not exit within {timeout} s of SIGTERM",
                        pytrace=False)
        self.procs[i] = None

    def kill(self, i):
        p = self.procs[i]
        if p is None:
            return
        self._signal(i, signal.SIGKILL)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.procs[i] = None

    def close(self):
        for i in range(self.n):
            p = self.procs[i]
            if p is None:
                continue
            try:
                # Whole process group, in case the supplier forked helpers.
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.procs[i] = None
        _unregister(self)

    def emergency(self):
        self.close()


class Mount:
    """One customer home H and mountpoint MNT under base."""

    def __init__(self, base, name="m"):
        self.base = Path(base)
        self.name = name
        self.home = self.base / f"{name}-home"
        self.path = self.base / f"{name}-mnt"
        self.path.mkdir(parents=True, exist_ok=True)
        self.passphrase = None
        self.last_mount_args = None
        _register(self)

    # -- commands -------------------------------------------------------
    def init(self, passphrase=None):
        args = ["init", "--home", self.home]
        if passphrase is None:
            args.append("--no-passphrase")
        else:
            pf = self.base / f"{self.name}-passphrase"
            pf.write_text(passphrase)
            args += ["--passphrase-file", pf]
            self.passphrase = passphrase
        run_peerfs(args, check=True, timeout=60)
        return self

    def mount_args(self, peers, ec=None, block_size=None, cache_size=None,
                   opts=None, extra=(), keep_versions=0):
        # Tests count fragments on suppliers right after deletes, so they
        # keep no older versions unless they test them (peerfs default 10).
        args = ["mount", "--home", self.home]
        if keep_versions is not None:
            args += ["--keep-versions", str(keep_versions)]
        for p in peers:
            args += ["--peer", p]
        if ec:
            args += ["--ec", ec]
        if block_size is not None:
            args += ["--block-size", block_size]
        if cache_size is not None:
            args += ["--cache-size", cache_size]
        if opts:
            args += ["-o", opts]
        args += list(extra)
        args.append(self.path)
        return args

    def try_mount(self, peers, env=None, timeout=CMD_TIMEOUT, **kw):
        """Run `peerfs mount` and return the CompletedProcess, whatever it is."""
        if self.passphrase is not None:
            env = dict(env or {})
            env.setdefault("PEERFS_PASSPHRASE", self.passphrase)
        self.last_mount_args = (list(peers), dict(kw))
        return run_peerfs(self.mount_args(peers, **kw), env=env, timeout=timeout)

    def mount(self, peers, **kw):
        cp = self.try_mount(peers, **kw)
        if cp.returncode != 0:
            pytest.fail(f"peerfs mount exited {cp.returncode}\nstderr: "
                        f"{cp.stderr[-3000:]}\nmount.log tail:\n{self.log_tail()}",
                        pytrace=False)
        if not self.is_mounted():
            pytest.fail(f"peerfs mount returned 0 but {self.path} is not in "
                        f"/proc/mounts\nmount.log tail:\n{self.log_tail()}",
                        pytrace=False)
        return self

    def remount(self, peers=None, **kw):
        """umount, then mount again (same peers/options unless given)."""
        old_peers, old_kw = self.last_mount_args or ([], {})
        self.umount()
        args = dict(old_kw)
        args.update(kw)
        return self.mount(peers if peers is not None else old_peers, **args)

    def sync(self, timeout=CMD_TIMEOUT):
        cp = run_peerfs(["sync", self.path], timeout=timeout)
        if cp.returncode != 0:
            pytest.fail(f"peerfs sync exited {cp.returncode}: {cp.stderr[-2000:]}"
                        f"\nmount.log tail:\n{self.log_tail()}", pytrace=False)
        return cp

    def umount(self, timeout=CMD_TIMEOUT):
        pid = self.daemon_pid()
        cp = run_peerfs(["umount", self.path], timeout=timeout)
        if cp.returncode != 0:
            pytest.fail(f"peerfs umount exited {cp.returncode}: {cp.stderr[-2000:]}"
                        f"\nmount.log tail:\n{self.log_tail()}", pytrace=False)
        if self.is_mounted():
            pytest.fail(f"peerfs umount returned 0 but {self.path} is still mounted",
                        pytrace=False)
        if pid is not None and not _wait_pid_gone(pid, 5):
            pytest.fail(f"peerfs umount returned but daemon {pid} is still running",
                        pytrace=False)
        return cp

    def drop_cache(self):
        """Cold cache: the mount's block cache and the kernel's page cache."""
        os.setxattr(self.path, "user.peerfs.drop_cache", b"1")
        drop_kernel_cache()

    def status_json(self, timeout=60):
        cp = run_peerfs(["status", self.path, "--json"], timeout=timeout)
        if cp.returncode != 0:
            pytest.fail(f"peerfs status --json exited {cp.returncode}: "
                        f"{cp.stderr[-2000:]}", pytrace=False)
        try:
            return json.loads(cp.stdout)
        except ValueError as e:
            pytest.fail(f"peerfs status --json printed invalid JSON ({e}):\n"
                        f"{cp.stdout[:2000]}", pytrace=False)

    # -- inspection -----------------------------------------------------
    def is_mounted(self):
        return is_mounted(self.path)

    @property
    def log_path(self):
        return self.home / "mount.log"

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def daemon_pids(self):
        pids = set()
        try:
            pid = int((self.home / "mount.pid").read_text().split()[0])
            if _pid_alive(pid):
                # Only trust it if that process is about this home.
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if str(self.home).encode() in cmdline or b"peerfs" in cmdline:
                        pids.add(pid)
                except OSError:
                    pass
        except (OSError, ValueError, IndexError):
            pass
        pat = "[-]-home[ =]" + ere_escape(str(self.home)) + "/?( |$)"
        try:
            out = subprocess.run(["pgrep", "-f", "--", pat], capture_output=True,
                                 text=True, timeout=10).stdout
            for tok in out.split():
                p = int(tok)
                if p != os.getpid():
                    pids.add(p)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        return pids

    def daemon_pid(self):
        pids = self.daemon_pids()
        return min(pids) if pids else None

    def kill_daemon(self, sig=signal.SIGKILL):
        for pid in self.daemon_pids():
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def cleanup(self):
        if self.is_mounted():
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                           capture_output=True, timeout=30)
        pids = self.daemon_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            _wait_pid_gone(pid, 5)
        if self.is_mounted():
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True,
                           timeout=30)
        _unregister(self)

    def emergency(self):
        # Killing the daemon aborts the FUSE connection: every pending
        # request of the hung test returns ENOTCONN.
        self.kill_daemon()


# -- supplier disks ----------------------------------------------------------

_FRAG_NAME = re.compile(r"^[0-9a-f]{66}$")
_OWNER_NAME = re.compile(r"^[0-9a-f]{64}$")


def fragment_files(store):
    """Complete fragment files of a supplier's store folder:
    <store>/<owner hex 64>/<2 hex>/<fragid hex 66> (temporaries skipped)."""
    out = []
    store = Path(store)
    try:
        owners = [d for d in store.iterdir() if _OWNER_NAME.match(d.name)]
    except OSError:
        return out
    for od in owners:
        try:
            subs = [d for d in od.iterdir() if len(d.name) == 2 and d.is_dir()]
        except OSError:
            continue
        for sd in subs:
            try:
                for f in sd.iterdir():
                    if _FRAG_NAME.match(f.name) and f.name.startswith(sd.name):
                        out.append(f)
            except OSError:
                continue
    return sorted(out)


def data_block_ids(home):
    """Ids (hex) of the blocks of file data in a mount's `blocks` LMDB table,
    read with mdb_dump (read-only, works while mounted). Blocks of the
    index are left out: new versions are published whenever bookkeeping
    changes, and old ones deleted, so their fragments come and go. Value
    layout: store/blocks.c (flags at byte 75, STORE_BLOCK_INDEX = 1)."""
    if not shutil.which("mdb_dump"):
        pytest.skip("mdb_dump (lmdb-utils) is not installed")
    cp = subprocess.run(["mdb_dump", "-s", "blocks", str(Path(home) / "meta")],
                        capture_output=True, text=True)
    assert cp.returncode == 0, f"mdb_dump: {cp.stderr}"
    lines = cp.stdout.split("HEADER=END\n", 1)[1].splitlines()
    lines = [ln.strip() for ln in lines if ln.startswith(" ")]
    out = set()
    for key, val in zip(lines[0::2], lines[1::2]):
        assert len(key) == 64 and len(val) > 2 * 76, (key, val[:200])
        if not int(val[150:152], 16) & 1:
            out.add(key)
    return out


def flip_bytes(path, count=4, seed=0):
    """Silent bit rot: flips `count` bytes in the middle of a file, in place
    (same inode, same size, mtime put back).  Returns the corrupted bytes."""
    path = Path(path)
    st = path.stat()
    data = bytearray(path.read_bytes())
    if not data:
        return bytes(data)
    rnd = __import__("random").Random(seed)
    lo, hi = len(data) // 4, max(len(data) // 4 + 1, 3 * len(data) // 4)
    for _ in range(count):
        data[rnd.randrange(lo, hi)] ^= 0xFF
    with open(path, "r+b") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return bytes(data)


def run_floor_tool(tool, *args):
    """Runs a bench floor tool (build/crypto_floor, build/io_floor); the
    test fails when it is missing. -> subprocess.CompletedProcess."""
    if not os.path.exists(tool):
        pytest.fail(f"{tool} is missing (make {os.path.relpath(tool, ROOT)})",
                    pytrace=False)
    return subprocess.run([str(tool), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def floor_figures(tool, *args):
    """run_floor_tool's "name value s/GB" lines as an ordered {name:
    value}; the test fails when the tool exits non-zero or prints another
    unit."""
    cp = run_floor_tool(tool, *args)
    assert cp.returncode == 0, cp.stderr
    figs = {}
    for line in cp.stdout.splitlines():
        name, value, unit = line.split()
        assert unit == "s/GB", line
        figs[name] = float(value)
    return figs


def drop_kernel_cache():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


# -- fixtures ------------------------------------------------------------

@pytest.fixture(scope="session")
def peerfs_bin():
    return require_binary()


def _need_fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing: FUSE tests cannot run here")


@pytest.fixture
def need_fuse():
    _need_fuse()


@pytest.fixture
def make_swarm(tmp_path, need_fuse):
    made = []

    def factory(n=6, **kw):
        require_binary()
        sw = Swarm(tmp_path / f"swarm{len(made)}", n, **kw)
        made.append(sw)
        return sw.start_all()

    yield factory
    for sw in made:
        sw.close()


@pytest.fixture
def make_mount(tmp_path, need_fuse):
    made = []

    def factory(name=None):
        require_binary()
        m = Mount(tmp_path, name or f"m{len(made)}")
        made.append(m)
        return m

    yield factory
    for m in made:
        m.cleanup()


@pytest.fixture(scope="module")
def swarm6(tmp_path_factory):
    _need_fuse()
    require_binary()
    sw = Swarm(tmp_path_factory.mktemp("swarm6"), 6)
    try:
        sw.start_all()
        yield sw
    finally:
        sw.close()


def module_mount(tmp_path_factory, swarm, name="m", **mount_kw):
    """Helper for module-scoped fixtures: a generator that yields a mounted
    Mount and cleans it up.  Usage:
        @pytest.fixture(scope="module")
        def mnt(tmp_path_factory, swarm6):
            yield from module_mount(tmp_path_factory, swarm6, ec="4+2")
    """
    _need_fuse()
    m = Mount(tmp_path_factory.mktemp(name), name)
    try:
        m.init()
        m.mount(swarm.peers, **mount_kw)
        yield m
    finally:
        m.cleanup()


# -- watchdog ----------------------------------------------------------------

def _emergency_all(reason):
    sys.stderr.write(f"\n*** peerfs watchdog: {reason}: killing mount daemons\n")
    with _LIVE_LOCK:
        objs = list(_LIVE)
    for o in objs:
        if isinstance(o, Mount):
            try:
                o.emergency()
            except Exception:
                pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    timer = threading.Timer(
        TEST_TIMEOUT, _emergency_all,
        args=(f"{item.nodeid} still running after {TEST_TIMEOUT:.0f} s",))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def pytest_sessionfinish(session, exitstatus):
    with _LIVE_LOCK:
        objs = list(_LIVE)
    for o in objs:
        try:
            if isinstance(o, Mount):
                o.cleanup()
            else:
                o.close()
        except Exception:
            pass


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Counts for `make test`: "N passed, N failed" (errors count as
    failed, a test is counted once).  Written after pytest's own summary
    line (from pytest_unconfigure) so that it is the last line."""
    st = terminalreporter.stats
    bad = set()
    for key in ("failed", "error"):
        for r in st.get(key, []):
            bad.add(getattr(r, "nodeid", id(r)))
    good = set()
    for r in st.get("passed", []):
        if getattr(r, "when", "call") == "call":
            nid = getattr(r, "nodeid", id(r))
            if nid not in bad:
                good.add(nid)
    skipped = len(st.get("skipped", []))
    lines = [f"{skipped} skipped"] if skipped else []
    lines.append(f"{len(good)} passed, {len(bad)} failed")
    config._peerfs_count_lines = lines


def pytest_unconfigure(config):
    lines = getattr(config, "_peerfs_count_lines", None)
    if not lines:
        return
    tr = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if tr is not None:
            tr.write_line(line)
        else:
            print(line)


# -- small shared utilities for the tests -----------------------------------

def run_with_timeout(code, timeout=60, args=()):
    """Run python code in a child (so a hung FUSE request can't block the
    test). Returns CompletedProcess; a timeout fails the test."""
    try:
        return subprocess.run([sys.executable, "-c", code] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"child did not finish within {timeout} s (hung FUSE request?)",
                    pytrace=False)


def errno_of(fn, *a, **kw):
    """Call fn; 0 on success, the errno on OSError."""
    try:
        fn(*a, **kw)
        return 0
    except OSError as e:
        return e.errno


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "OK"


def wait_for(cond, timeout, what):
    """cond()'s first true value, polled every 0.3 s; fails the test
    after timeout seconds, naming what it waited for."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.3)
