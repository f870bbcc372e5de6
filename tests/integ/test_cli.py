"""Command-line contract: --help, option errors, init, passphrase, mountpoint."""

import os

import pytest

from conftest import Mount, Swarm, is_mounted, run_peerfs

COMMANDS = ["init", "supplier", "mount", "sync", "umount", "status"]


def _nonempty_lines(s):
    return [l for l in s.splitlines() if l.strip()]


def _assert_clean_failure(cp, what):
    """Non-zero exit, not killed by a signal, no crash markers."""
    out = cp.stdout + cp.stderr
    assert cp.returncode != 0, f"{what}: exit status 0\n{out}"
    assert cp.returncode > 0, f"{what}: killed by signal {-cp.returncode}\n{out}"
    assert cp.returncode < 128, f"{what}: exit status {cp.returncode} looks like a crash\n{out}"
    for marker in ("Traceback", "AddressSanitizer", "Segmentation fault",
                   "Assertion", "core dumped", "runtime error:"):
        assert marker not in out, f"{what}: output has {marker!r}\n{out}"
    assert cp.stderr.strip(), f"{what}: failed without saying why on stderr\n{out}"


def _assert_usage_error(cp, what):
    _assert_clean_failure(cp, what)
    assert cp.returncode == 2, f"{what}: exit status {cp.returncode}, want 2\n{cp.stderr}"
    lines = _nonempty_lines(cp.stderr)
    assert len(lines) == 1, f"{what}: want a one-line error, got {len(lines)} lines:\n{cp.stderr}"


def test_top_level_help(peerfs_bin):
    cp = run_peerfs(["--help"], timeout=20)
    assert cp.returncode == 0, cp.stderr
    text = (cp.stdout + cp.stderr).lower()
    assert "usage" in text
    for c in COMMANDS:
        assert c in text, f"top-level --help does not mention {c!r}:\n{text}"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_command_help(peerfs_bin, cmd):
    cp = run_peerfs([cmd, "--help"], timeout=20)
    assert cp.returncode == 0, f"peerfs {cmd} --help exited {cp.returncode}: {cp.stderr}"
    text = cp.stdout + cp.stderr
    assert "usage" in text.lower(), f"peerfs {cmd} --help has no usage:\n{text}"
    assert cmd in text, f"peerfs {cmd} --help does not name the command:\n{text}"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_unknown_option(peerfs_bin, tmp_path, cmd):
    cp = run_peerfs([cmd, "--no-such-option-xyz"], timeout=20)
    _assert_usage_error(cp, f"peerfs {cmd} --no-such-option-xyz")
    assert "no-such-option-xyz" in cp.stderr, cp.stderr


def test_unknown_command(peerfs_bin):
    cp = run_peerfs(["frobnicate"], timeout=20)
    _assert_clean_failure(cp, "peerfs frobnicate")
    assert len(_nonempty_lines(cp.stderr)) <= 2, cp.stderr


@pytest.mark.parametrize("ec", ["4x2", "0+2", "4+", "+2", "a+b", "4+2+1", ""])
def test_bad_ec_value(peerfs_bin, tmp_path, ec):
    # Everything else is valid, so the only thing wrong is --ec.  (Nothing
    # listens on the peer addresses; a good binary never gets that far.)
    m = Mount(tmp_path, "ec")
    try:
        args = ["mount", "--home", m.home, "--peer", "127.0.0.1:9",
                "--ec", ec, m.path]
        cp = run_peerfs(args, timeout=30)
        _assert_usage_error(cp, f"peerfs mount --ec {ec!r}")
        assert not is_mounted(m.path)
    finally:
        m.cleanup()


@pytest.mark.parametrize("opt,val", [("--block-size", "abc"),
                                     ("--block-size", "4Q"),
                                     ("--cache-size", "-1"),
                                     ("--cache-size", "12 M")])
def test_bad_size_value(peerfs_bin, tmp_path, opt, val):
    m = Mount(tmp_path, "sz")
    try:
        args = ["mount", "--home", m.home, "--peer", "127.0.0.1:9",
                opt, val, m.path]
        cp = run_peerfs(args, timeout=30)
        _assert_usage_error(cp, f"peerfs mount {opt} {val!r}")
    finally:
        m.cleanup()


def test_bad_quota_value(peerfs_bin, tmp_path):
    cp = run_peerfs(["supplier", "--home", tmp_path / "s", "--listen",
                     "127.0.0.1:0", "--store", tmp_path / "st", "--quota",
                     "lots"], timeout=30)
    _assert_usage_error(cp, "peerfs supplier --quota lots")


def test_bad_listen_value(peerfs_bin, tmp_path):
    cp = run_peerfs(["supplier", "--home", tmp_path / "s", "--listen",
                     "not-an-address", "--store", tmp_path / "st"], timeout=30)
    _assert_clean_failure(cp, "peerfs supplier --listen not-an-address")


def test_init_creates_home_and_twice_fails(peerfs_bin, tmp_path):
    home = tmp_path / "h"
    cp = run_peerfs(["init", "--home", home, "--no-passphrase"], timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert home.is_dir() and any(home.iterdir()), "init left the home empty"
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    cp2 = run_peerfs(["init", "--home", home, "--no-passphrase"], timeout=60)
    _assert_clean_failure(cp2, "second peerfs init")
    after = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    assert before == after, "a failed second init changed the existing key files"


def test_init_home_from_env(peerfs_bin, tmp_path):
    home = tmp_path / "envhome"
    cp = run_peerfs(["init", "--no-passphrase"], timeout=60,
                    env={"PEERFS_HOME": str(home)})
    assert cp.returncode == 0, cp.stderr
    assert home.is_dir() and any(home.iterdir())


def test_init_passphrase_file_key_not_plain(peerfs_bin, tmp_path):
    home = tmp_path / "h"
    pf = tmp_path / "pp"
    pf.write_text("correct horse battery staple\n")
    cp = run_peerfs(["init", "--home", home, "--passphrase-file", pf], timeout=60)
    assert cp.returncode == 0, cp.stderr
    for p in home.rglob("*"):
        if p.is_file():
            assert b"correct horse" not in p.read_bytes(), f"passphrase stored in {p}"


def test_wrong_passphrase(tmp_path, make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount("pp")
    m.init(passphrase="correct horse battery staple")
    cp = m.try_mount(sw.peers, env={"PEERFS_PASSPHRASE": "wrong passphrase"},
                     timeout=60)
    _assert_clean_failure(cp, "mount with a wrong passphrase")
    assert any(w in cp.stderr.lower() for w in ("passphrase", "key", "decrypt")), \
        f"error does not say what is wrong: {cp.stderr!r}"
    assert not m.is_mounted(), "mounted despite a wrong passphrase"
    # The right passphrase still works (the key file was not damaged).
    m.mount(sw.peers)
    with open(m.path / "x", "w") as f:
        f.write("hello")
    assert (m.path / "x").read_text() == "hello"
    m.umount()


def test_mount_missing_mountpoint(tmp_path, make_swarm, make_mount):
    sw = make_swarm(6)
    m = make_mount("mp")
    m.init()
    missing = tmp_path / "does" / "not" / "exist"
    cp = run_peerfs(m.mount_args(sw.peers)[:-1] + [missing], timeout=60)
    _assert_clean_failure(cp, "mount on a missing mountpoint")
    low = cp.stderr.lower()
    assert str(missing) in cp.stderr or "mountpoint" in low or "no such" in low, \
        f"error does not name the problem: {cp.stderr!r}"
    assert not os.path.exists(missing)
    # No daemon left behind.
    assert not m.daemon_pids(), "a mount daemon is still running after the failure"


@pytest.mark.parametrize("cmd", [["sync"], ["status"], ["status", "--json"], ["umount"]],
                         ids=["sync", "status", "status-json", "umount"])
def test_command_on_non_peerfs_dir_fails(peerfs_bin, tmp_path, cmd):
    d = tmp_path / "plain"
    d.mkdir()
    cp = run_peerfs(cmd + [d], timeout=30)
    _assert_clean_failure(cp, f"peerfs {' '.join(cmd)} on a plain directory")
    assert not os.listxattr(d), f"peerfs {cmd[0]} left xattrs on a plain dir: {os.listxattr(d)}"
