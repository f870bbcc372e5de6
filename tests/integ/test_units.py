"""systemd: the unit files pass `systemd-analyze verify`, and the daemons
speak the readiness protocol (Type=notify) the units rely on: READY=1 once
the supplier listens / the folder is mounted, STOPPING=1 on the way out.
The units themselves run under a real systemd only in `make test-deb`."""

import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import (PEERFS, ROOT, Mount, clean_env, free_port, is_mounted,
                      pid_listens, require_binary)

UNITS = ["peerfs-supplier@.service", "peerfs-mount@.service"]
# Generous: only a hung daemon gets near it; the test asserts order, not time.
WAIT = 60


def test_units_verify(tmp_path):
    """Every directive is known, every command exists (the installed path
    /usr/bin/peerfs replaced by the one under test), instances expand."""
    require_binary()
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing (package systemd; make deps)"
    paths = []
    for unit, inst in zip(UNITS, ["srv-peerfs", "home-alice-Vault"]):
        text = (ROOT / "systemd" / unit).read_text()
        assert "/usr/bin/peerfs " in text
        p = tmp_path / unit.replace("@.", f"@{inst}.")
        p.write_text(text.replace("/usr/bin/peerfs ", f"{PEERFS} "))
        paths.append(str(p))
    # --man=no: the manual pages are installed by the package, not here.
    cp = subprocess.run([analyze, "verify", "--man=no"] + paths,
                        capture_output=True, text=True, cwd=tmp_path)
    assert cp.returncode == 0 and not cp.stderr.strip(), cp.stderr


# Each gives the service a mount namespace that is a slave of the system's:
# a FUSE mount made there is seen by nobody else (README, "Debian package").
NAMESPACING = ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
               "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
               "ProtectKernelTunables", "ProtectKernelModules",
               "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc",
               "PrivateMounts", "MountFlags", "TemporaryFileSystem",
               "BindPaths", "BindReadOnlyPaths", "RootDirectory")


def test_mount_unit_shares_the_mount():
    keys = [l.split("=", 1)[0].strip() for l in
            (ROOT / "systemd" / "peerfs-mount@.service").read_text().splitlines()
            if "=" in l and not l.lstrip().startswith("#")]
    assert "Type" in keys and "ExecStop" in keys
    bad = [k for k in keys if k in NAMESPACING]
    assert not bad, f"peerfs-mount@.service would mount in a namespace of its own: {bad}"


def _notify_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path if path[0] != "@" else "\0" + path[1:])
    s.settimeout(WAIT)
    return s


def _expect(sock, proc, want, log):
    try:
        msg = sock.recv(4096).decode()
    except socket.timeout:
        pytest.fail(f"no {want} within {WAIT} s (exit {proc.poll()}): "
                    f"{log.read_text(errors='replace')[-2000:]}")
    assert want in msg.split("\n"), msg


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_supplier_notifies(tmp_path):
    require_binary()
    sock = _notify_socket(str(tmp_path / "notify"))
    port = free_port()
    (tmp_path / "store").mkdir()
    log = tmp_path / "supplier.log"
    env = clean_env({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    with open(log, "wb") as lf:
        proc = subprocess.Popen(
            [str(PEERFS), "supplier", "--home", str(tmp_path / "home"),
             "--listen", f"127.0.0.1:{port}", "--store",
             str(tmp_path / "store")], stdout=lf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        _expect(sock, proc, "READY=1", log)
        assert pid_listens(proc.pid, port), "READY=1 before listening"
        proc.send_signal(signal.SIGTERM)
        _expect(sock, proc, "STOPPING=1", log)
        assert proc.wait(WAIT) == 0
    finally:
        _stop(proc)
        sock.close()


def test_mount_notifies(tmp_path, make_swarm):
    """As peerfs-mount@.service runs it: `mount -f`, stopped by `umount`,
    which returns once the file written is on the suppliers; the abstract
    socket form of NOTIFY_SOCKET."""
    sw = make_swarm(6)
    m = Mount(tmp_path).init()
    args = m.mount_args(sw.peers)
    name = f"@peerfs-test-{os.getpid()}-{tmp_path.name}"
    sock = _notify_socket(name)
    log = tmp_path / "mount.log"
    with open(log, "wb") as lf:
        proc = subprocess.Popen(
            [str(PEERFS)] + [str(a) for a in args[:-1]] + ["-f", str(m.path)],
            stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=clean_env({"NOTIFY_SOCKET": name}), start_new_session=True)
    um = None
    try:
        _expect(sock, proc, "READY=1", log)
        assert is_mounted(m.path), "READY=1 before the mount"
        (m.path / "f").write_text("ready")
        # umount waits for the daemon to be gone: reap it meanwhile, as
        # systemd would (a zombie still counts as alive).
        um = subprocess.Popen([str(PEERFS), "umount", str(m.path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=clean_env(),
                              text=True)
        _expect(sock, proc, "STOPPING=1", log)
        assert proc.wait(WAIT) == 0
        out = um.communicate(timeout=WAIT)[0]
        assert um.returncode == 0, out
        assert not is_mounted(m.path)
    finally:
        _stop(proc)
        if um is not None and um.poll() is None:
            um.kill()
            um.wait()
        if is_mounted(m.path):
            subprocess.run(["umount", "-l", str(m.path)])
        sock.close()
