"""`peerfs demo`: a swarm on one machine found through a DHT on loopback
(issue 15): 8 suppliers on 127.0.N.1 (a /24 each), the first starting the
DHT, the mount given only a bootstrap address. Runs under `unshare -n`
(netns.isolated) with the child's own loopback, so its ports and DHT
traffic meet nobody else's."""

import os
import signal
import subprocess

from conftest import PEERFS, _wait_pid_gone, run_peerfs, wait_for
from netns import isolated


def stop_all(d):
    """Every process the demo started goes, and its mount, even when
    `demo --stop` hangs (it waits for the network to hold everything: a
    swarm too small for k+m never does)."""
    try:
        subprocess.run([str(PEERFS), "demo", "--stop", str(d)],
                       capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        pass
    pidfiles = list(d.glob("supplier-*/supplier.pid")) + [d / "home" / "mount.pid"]
    for pidf in pidfiles:
        try:
            pid = int(pidf.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            _wait_pid_gone(pid, 5)
        except (OSError, ValueError, IndexError):
            pass
    subprocess.run(["fusermount3", "-u", "-z", str(d / "mnt")],
                   capture_output=True, timeout=30)


def test_demo_through_dht(request, tmp_path, need_fuse):
    """The demo mounts with no --peer: it hires its suppliers (k+m and
    up to 2 spares) through the DHT, one per /24; a file written survives
    `demo --stop` and a second `demo`, which finds the same suppliers
    again."""
    if isolated(request):
        return
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    d = tmp_path / "demo"
    try:
        cp = run_peerfs(["demo", d], timeout=120)
        assert cp.returncode == 0, cp.stderr
        assert "found through the DHT" in cp.stdout
        args = (d / "home" / "mount.log").read_text()
        hired = [line.split() for line in
                 (d / "home" / "hired").read_text().splitlines()]
        # k+m = 6 at least; the spares when their records were in the
        # DHT by then (the last suppliers start just before the mount).
        assert 6 <= len(hired) <= 8, hired
        blocks = {a.split(":")[0].rsplit(".", 1)[0] for _, a in hired}
        assert len(blocks) == len(hired), hired
        assert not (d / "home" / "peers").exists(), args
        # Each supplier finds itself reachable at its own 127.0.N.1 and
        # stays announced (a dial-back asked from another source address
        # found nobody there, and the demo's records were withdrawn).
        logs = sorted(d.glob("supplier-*/supplier.log"))
        assert len(logs) == 8, logs
        wait_for(lambda: all("reach: direct at 127.0." in p.read_text()
                             for p in logs), 60, "every supplier direct")
        for p in logs:
            assert "not announced" not in p.read_text(), p.read_text()[-2000:]
        data = os.urandom(3 * 1024 * 1024 + 5)
        (d / "mnt" / "f.bin").write_bytes(data)
        assert run_peerfs(["sync", d / "mnt"]).returncode == 0
        cp = run_peerfs(["demo", "--stop", d], timeout=120)
        assert cp.returncode == 0, cp.stderr
        assert not os.path.ismount(d / "mnt")
        cp = run_peerfs(["demo", d], timeout=120)
        assert cp.returncode == 0, cp.stderr
        assert (d / "mnt" / "f.bin").read_bytes() == data
        again = [line.split() for line in
                 (d / "home" / "hired").read_text().splitlines()]
        # The same suppliers again (and any spare missed the first time).
        assert {tuple(h) for h in hired} <= {tuple(h) for h in again}, again
    finally:
        stop_all(d)
