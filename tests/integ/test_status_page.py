"""The mount's status page (`peerfs mount --status-page ADDR:PORT`): real
suppliers, a real mount, libmicrohttpd answering on loopback under a token,
and headless Chromium running the page's live refresh.

The screenshot lands in the test's tmp dir; with PEERFS_DOCS_SCREENSHOT=1
it is also copied to docs/status-page.png (a test run leaves the tree
clean otherwise)."""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import Mount, Swarm, is_mounted, run_peerfs

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")


def _get(url, method="GET"):
    """(status, headers, body) of one request; errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    base = tmp_path_factory.mktemp("statuspage")
    sw = Swarm(base / "swarm", 4)
    m = Mount(base, "m")
    try:
        sw.start_all()
        m.init()
        cp = m.try_mount(sw.peers, ec="2+1",
                         extra=["--status-page", "127.0.0.1:0"])
        assert cp.returncode == 0, f"mount: {cp.stderr}\n{m.log_tail()}"
        found = re.search(r"status page at (http://127\.0\.0\.1:\d+/"
                          r"[0-9a-f]{32}/)", cp.stderr)
        assert found, f"no status page URL on stderr:\n{cp.stderr}"
        url = found.group(1)
        assert url in m.log_text(), "the URL is not in mount.log"
        (m.path / "a").write_bytes(os.urandom(300_000))
        (m.path / "b").write_bytes(os.urandom(50_000))
        m.sync()
        yield sw, m, url, base
    finally:
        m.cleanup()
        sw.close()


def test_token_required(page):
    sw, m, url, _ = page
    st, hdr, body = _get(url)
    assert st == 200, body
    assert hdr["Content-Type"].startswith("text/html")
    assert b"<svg id='blocks'" in body
    assert "default-src 'none'" in hdr["Content-Security-Policy"]
    root = url[:url.index("/", len("http://"))]
    token = url.rstrip("/").rsplit("/", 1)[1]
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in ("/", "/status.json", f"/{wrong}/", f"/{wrong}/status.json",
                f"/{token[:-1]}/status.json", f"/{token}0/status.json",
                f"/x{token}/", f"/?{token}"):
        st, _, body = _get(root + bad)
        assert st == 403, f"{bad}: {st} {body!r}"
        assert b"token" in body and b"suppliers" not in body
    st, _, _ = _get(url + "status.json", method="POST")
    assert st == 405
    st, _, _ = _get(url + "nothing-here")
    assert st == 404


def _stable(s):
    return ([(p["id"], p["address"], p["state"], p["placed_fragments"])
             for p in s["suppliers"]],
            {k: s["blocks"][k] for k in ("total", "full", "degraded", "lost")},
            s["mountpoint"], s["pid"], s["block_size"])


def test_json_matches_status(page):
    sw, m, url, _ = page
    st, hdr, body = _get(url + "status.json")
    assert st == 200 and hdr["Content-Type"] == "application/json"
    served = json.loads(body)
    cli = m.status_json()
    assert set(served) == set(cli)
    assert _stable(served) == _stable(cli)
    assert sorted(p["address"] for p in served["suppliers"]) == sorted(sw.peers)
    assert served["blocks"]["total"] >= 2
    assert sum(p["placed_fragments"] for p in served["suppliers"]) == \
        3 * (served["blocks"]["total"] + served["blocks"]["index"])


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "192.0.2.1:8080", "[::]:0",
                                  "localhost:0", "127.0.0.1"])
def test_non_loopback_refused(tmp_path, need_fuse, addr):
    m = Mount(tmp_path, "r")
    try:
        m.init()
        cp = m.try_mount([], extra=["--status-page", addr])
        assert cp.returncode == 2, cp.stderr
        assert "--status-page" in cp.stderr
        if addr in ("0.0.0.0:0", "192.0.2.1:8080", "[::]:0"):
            assert "not a loopback address" in cp.stderr, cp.stderr
        assert not is_mounted(m.path)
    finally:
        m.cleanup()


def _chromium(base, url, *args):
    if not CHROMIUM:
        pytest.fail("chromium is not installed (scripts/install-deps)")
    prof = base / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={prof}", "--hide-scrollbars",
           # The page refreshes on a 1 s timer: virtual time runs three of
           # them (fetches hold virtual time while they are in flight).
           "--virtual-time-budget=3500", *args, url]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                        stdin=subprocess.DEVNULL, env=dict(os.environ, HOME=str(base)))
    assert cp.returncode == 0, f"chromium exited {cp.returncode}:\n{cp.stderr[-3000:]}"
    return cp.stdout


def _rows(dom):
    """(address, state) of each supplier row of a dumped DOM."""
    return re.findall(r"<tr data-state=\"(\w+)\"><td class=\"mono\">[0-9a-f]+</td>"
                      r"<td class=\"mono supplier-address\">([^<]+)</td>", dom)


def test_browser_shows_suppliers_live(page):
    sw, m, url, base = page
    dom = _chromium(base, url, "--dump-dom")
    refreshes = int(re.search(r'data-refreshes="(\d+)"', dom).group(1))
    assert refreshes >= 1, dom[:3000]
    rows = {a: s for s, a in _rows(dom)}
    assert sorted(rows) == sorted(sw.peers), dom[:3000]
    assert set(rows.values()) <= {"online", "spare"}, rows
    assert str(m.path) in dom

    # One supplier goes away: the next load shows it no longer online.
    gone = sw.address(0)
    sw.kill(0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {p["address"]: p["state"] for p in m.status_json()["suppliers"]}
        if states[gone] not in ("online", "spare"):
            break
        time.sleep(0.2)
    assert states[gone] not in ("online", "spare"), states
    shot = base / "status-page.png"
    _chromium(base, url, f"--screenshot={shot}", "--window-size=1200,760")
    assert shot.stat().st_size > 10_000
    if os.environ.get("PEERFS_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "status-page.png")
    dom = _chromium(base, url, "--dump-dom")
    rows = {a: s for s, a in _rows(dom)}
    assert rows[gone] not in ("online", "spare"), rows
    assert "3 of 4 suppliers online" in dom


def test_port_in_use_fails_the_mount(tmp_path, need_fuse):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    m = Mount(tmp_path, "u")
    try:
        m.init()
        port = s.getsockname()[1]
        cp = m.try_mount([], extra=["--status-page", f"127.0.0.1:{port}"])
        assert cp.returncode == 1, cp.stderr
        assert not is_mounted(m.path)
        assert f"status page: cannot listen on 127.0.0.1:{port}" in m.log_text()
    finally:
        m.cleanup()
        s.close()
