"""Progress of long work (cli/progress.c): `peerfs pin`, `check` and
`umount` write plain lines on stderr when it is not a terminal, and a bar
redrawn in place when it is (a pty)."""

import os
import pty
import re
import select
import subprocess

from conftest import PEERFS, clean_env, run_peerfs

BS = 64 * 1024


def lines_of(stderr, cmd, unit):
    """(done, total) of each progress line of cmd in stderr."""
    pat = re.compile(rf"^peerfs {cmd}: (\d+)/(\d+) {unit}, (.* )?\d+s$")
    return [(int(m.group(1)), int(m.group(2)))
            for m in map(pat.match, stderr.splitlines()) if m]


def written(make_swarm, make_mount, nblocks):
    sw = make_swarm(6)
    sw.start_all()
    m = make_mount().init()
    # A partly written block waits in the journal until umount.
    m.mount(sw.peers, block_size="64K", extra=["--write-back", "1h"])
    (m.path / "d").mkdir()
    (m.path / "d" / "f").write_bytes(os.urandom(nblocks * BS))
    return sw, m


def test_plain_lines(make_swarm, make_mount, tmp_path):
    sw, m = written(make_swarm, make_mount, 24)
    m.sync()
    m.drop_cache()

    cp = run_peerfs(["pin", m.path / "d"], timeout=120)
    assert cp.returncode == 0, cp.stderr
    got = lines_of(cp.stderr, "pin", "blocks local")
    assert got, cp.stderr
    assert got[-1] == (24, 24), cp.stderr
    assert all(t == 24 and 0 <= d <= t for d, t in got), cp.stderr
    assert "pinned" in cp.stdout

    cp = run_peerfs(["check", m.path], timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    got = lines_of(cp.stderr, "check", "blocks audited")
    assert len(got) >= 2, cp.stderr
    assert got[0][0] == 0 and got[0][1] >= 24, cp.stderr
    assert got[-1][0] == got[-1][1] >= 24, cp.stderr
    assert "full redundancy" in cp.stdout

    (m.path / "tail").write_bytes(os.urandom(5000))
    assert m.status_json()["blocks"]["pending"] >= 1
    cp = m.umount()
    got = lines_of(cp.stderr, "umount", "blocks")
    assert got and got[-1][0] == got[-1][1] >= 1, cp.stderr
    assert "0 KiB left" in cp.stderr.splitlines()[-1], cp.stderr

    # restore: the index's blocks as they are fetched.
    code = run_peerfs(["key", "export", "--home", m.home])
    assert code.returncode == 0, code.stderr
    (tmp_path / "code").write_text(code.stdout)
    cp = run_peerfs(["restore", "--home", tmp_path / "restored",
                     "--code-file", tmp_path / "code", "--peer",
                     sw.peers[0], "--no-passphrase"], timeout=120)
    assert cp.returncode == 0, cp.stderr
    got = lines_of(cp.stderr, "restore", "index blocks")
    assert len(got) >= 2 and got[0][0] == 0, cp.stderr
    assert got[-1][0] == got[-1][1] >= 1, cp.stderr
    assert "restored version" in cp.stdout


def run_on_pty(args, timeout=120):
    """args with stderr on a pty (stdout captured apart): (rc, stdout,
    what the terminal got)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(PEERFS)] + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL, env=clean_env())
    os.close(slave)
    term = b""
    try:
        while True:
            r, _, _ = select.select([master], [], [], timeout)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:		# EIO: the pty's other side closed
                break
            if not chunk:
                break
            term += chunk
        out = p.communicate(timeout=timeout)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return p.returncode, out.decode(), term.decode(errors="replace")


def test_bar_on_terminal(make_swarm, make_mount):
    _, m = written(make_swarm, make_mount, 8)
    m.sync()
    m.drop_cache()
    rc, out, term = run_on_pty(["pin", m.path / "d"])
    assert rc == 0, term
    # Redrawn in place: carriage returns, a bar, no plain lines.
    assert re.search(r"\r\[#{24}\] 8/8 blocks local, \d+s", term), term
    assert "peerfs pin: " not in term
    assert "pinned" in out
