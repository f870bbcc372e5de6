"""HOME/config, `peerfs config`, -o options, and mount(8): `mount -t
fuse.peerfs` (through fuse3's mount.fuse3) and an /etc/fstab-style line
(`mount -T FILE MOUNTPOINT`), against real suppliers and real mounts.

mount(8) looks for helpers in /sbin only, and mount.fuse3 runs `peerfs`
through a fixed PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:...).  So
that nothing is left on the system, the mount(8) scenario runs in a private
mount namespace (`unshare -m`) where a temporary directory holding a
`peerfs` link to the built binary is bind-mounted over /usr/local/sbin;
the namespace, its bind mount and its FUSE mount vanish with its last
process (the mount daemon, killed by the Mount cleanup if the test fails).
`mount -t peerfs` (/sbin/mount.peerfs) is exercised by running a
`mount.peerfs` link the way mount(8) runs it.
"""

import os
import re
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import (PEERFS, clean_env, fragment_files, free_port,
                      port_accepts, run_peerfs)

MOUNTED = re.compile(r"mounted (\S+) \((\d+)\+(\d+), [^,]+, block (\d+), "
                     r"cache (\d+)\)")


def last_mounted(m):
    """(k, m, block, cache) of the mount log's last `mounted` line."""
    found = MOUNTED.findall(m.log_text())
    assert found, f"no 'mounted' line in mount.log:\n{m.log_tail()}"
    _, k, mm, block, cache = found[-1]
    return int(k), int(mm), int(block), int(cache)


def write_config(home, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text(textwrap.dedent(text))


def config_line(text, key):
    """The `key = value ; origin` line of `peerfs config`'s output."""
    for line in text.splitlines():
        if line.startswith(key + " = "):
            return line
    raise AssertionError(f"no {key} in peerfs config output:\n{text}")


def test_config_file_and_command_line(make_swarm, make_mount, tmp_path):
    """A supplier started with only --home serves from its config file;
    a mount takes its suppliers, code and cache from the file; the
    command line wins; `peerfs config` says where each value came from."""
    sw = make_swarm(2)
    shome = tmp_path / "csup-home"
    port = free_port()
    write_config(shome, f"""\
        [network]
        listen = 127.0.0.1:{port}
        [supplier]
        store = {tmp_path / "csup-store"}
        stranger_quota = 64M
        """)
    log = open(tmp_path / "csup.log", "wb")
    sup = subprocess.Popen([str(PEERFS), "supplier", "--home", str(shome)],
                           stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env=clean_env(),
                           start_new_session=True)
    log.close()
    try:
        for _ in range(200):
            if port_accepts(port) or sup.poll() is not None:
                break
            time.sleep(0.1)
        assert sup.poll() is None and port_accepts(port), \
            (tmp_path / "csup.log").read_text(errors="replace")

        m = make_mount("cfg")
        m.init()
        peers = sw.peers + [f"127.0.0.1:{port}"]
        write_config(m.home, f"""\
            ; what this home mounts with
            [network]
            peer = {peers[0]}, {peers[1]}
            peer = {peers[2]}
            [mount]
            ec = 2+1
            cache_size = 5M
            block_size = 1M
            keep_versions = 0
            """)
        m.mount([], keep_versions=None)
        assert last_mounted(m) == (2, 1, 1 << 20, 5 << 20)
        data = os.urandom(3 << 20)
        (m.path / "f").write_bytes(data)
        m.sync()
        assert fragment_files(tmp_path / "csup-store"), \
            "the config-file supplier got no fragment"

        cp = run_peerfs(["config", "--home", m.home, "mount",
                         "--cache-size", "6M"], check=True)
        out = cp.stdout
        assert config_line(out, "cache_size").endswith("= 6M\t; command line")
        assert config_line(out, "ec") == f"ec = 2+1\t; {m.home}/config:6"
        assert config_line(out, "peer") == \
            f"peer = {','.join(peers)}\t; {m.home}/config:4"
        assert config_line(out, "write_back") == "write_back = 5s\t; default"
        cp = run_peerfs(["config", "--home", shome], check=True)
        assert f"listen = 127.0.0.1:{port}\t; {shome}/config:2" in cp.stdout
        assert "stranger_quota = 64M\t; " in cp.stdout

        m.umount()
        m.mount([], keep_versions=None, cache_size="6M")
        assert last_mounted(m)[3] == 6 << 20
        assert (m.path / "f").read_bytes() == data
        m.umount()

        # A bad value is refused before anything starts, naming the line.
        write_config(m.home, "[mount]\ncache_size = 5M\nwrite_back = soon\n")
        cp = m.try_mount([], keep_versions=None)
        assert cp.returncode == 2, cp.stderr
        assert f"{m.home}/config:3: [mount] bad write_back 'soon'" \
            in cp.stderr
        assert not m.is_mounted()
    finally:
        sup.kill()
        sup.wait()


def test_mount_o_options(make_swarm, make_mount):
    """Every mount option as -o NAME=VALUE; FUSE's pass through; mount(8)'s
    are dropped; an unknown one is an error and mounts nothing."""
    sw = make_swarm(3)
    m = make_mount("o")
    m.init()
    cp = m.try_mount(sw.peers, opts="bogus_option=1")
    assert cp.returncode == 2 and "unknown -o option 'bogus_option=1'" \
        in cp.stderr, cp.stderr
    assert not m.is_mounted()

    m.mount(sw.peers, opts="ec=2+1,cache_size=7M,block_size=1M,"
            "write_back=1s,allow_other",
            extra=["-o", "_netdev,noauto,x-systemd.automount,user"])
    assert last_mounted(m) == (2, 1, 1 << 20, 7 << 20)
    with open("/proc/mounts") as f:
        line = [l for l in f if l.split()[1] == str(m.path)][0]
    assert "allow_other" in line.split()[3], line
    (m.path / "x").write_bytes(b"o" * 100000)
    m.umount()


def test_mount_helper_and_fstab(make_swarm, make_mount, tmp_path):
    """`mount -t fuse.peerfs HOME MNT -o ...` and an fstab line mount the
    home (in a private mount namespace, see the module's text); so does a
    mount.peerfs link run the way mount(8) runs /sbin/mount.peerfs."""
    # scripts/install-deps installs both (util-linux, fuse3).
    assert shutil.which("unshare") and os.path.exists("/sbin/mount.fuse3")
    sw = make_swarm(3)
    m = make_mount("helper")
    m.init()
    write_config(m.home, f"""\
        [network]
        peer = {",".join(sw.peers)}
        [mount]
        keep_versions = 0
        """)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "peerfs").symlink_to(PEERFS)
    (bindir / "mount.peerfs").symlink_to(PEERFS)
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{m.home}  {m.path}  fuse.peerfs  _netdev,noauto,"
                     f"x-systemd.automount,user,allow_other  0 0\n")
    # Private before the bind mount, so it never reaches the real
    # /usr/local/sbin. Where / is no mount point (a chroot, as in
    # fresh-machine.sh) that fails, and the chroot's runner has given the
    # test a mount namespace of its own already.
    script = f"""
        set -e
        mount --make-rprivate / 2>/dev/null || true
        mount --bind {bindir} /usr/local/sbin
        mount -t fuse.peerfs {m.home} {m.path} -o ec=2+1,cache_size=9M,_netdev
        grep -q " {m.path} fuse.peerfs " /proc/mounts
        echo first > {m.path}/a
        {PEERFS} umount {m.path}
        if grep -q " {m.path} " /proc/mounts; then exit 3; fi
        mount -T {fstab} {m.path}
        grep " {m.path} " /proc/mounts
        cat {m.path}/a
        {PEERFS} umount {m.path}
        {bindir}/mount.peerfs {m.home} {m.path} -n -o rw,cache_size=3M
        cat {m.path}/a
        {PEERFS} umount {m.path}
    """
    cp = subprocess.run(["unshare", "-m", "--propagation", "unchanged", "sh",
                         "-c", script], capture_output=True, text=True,
                        timeout=300, env=clean_env(), stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, \
        f"stdout: {cp.stdout}\nstderr: {cp.stderr}\nlog:\n{m.log_tail()}"
    found = MOUNTED.findall(m.log_text())
    assert [int(f[4]) for f in found] == [9 << 20, 32 << 20, 3 << 20], found
    assert all((f[1], f[2]) == ("2", "1") for f in found), found
    fstab_line = cp.stdout.splitlines()[0]
    assert "allow_other" in fstab_line and "nosuid" in fstab_line, fstab_line
    assert cp.stdout.splitlines()[1:] == ["first", "first"], cp.stdout
    assert not os.path.exists(f"/usr/local/sbin/peerfs")
