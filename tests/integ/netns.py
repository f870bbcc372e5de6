"""Simulated machines for the network tests: one network namespace per
machine, all plugged into an "internet" bridge that lives in a namespace of
its own, with addresses from 198.18.0.0/15 (reserved for benchmarks).

Nothing can leave the real machine:
  * isolated(request) re-runs the calling test in a child under
    `unshare -n` (the child's own network namespace has only a loopback),
    so even a process started without nsenter reaches nothing;
  * no veth ever ends in the root namespace; the bridge is in its own.

    net = Internet()                      # unique names for this run
    a = net.machine("a", "198.18.5.2")    # eth0 198.18.5.2/15 on the bridge
    a.run(["ip", "addr"])                 # nsenter --net=/run/netns/...
    a.spawn([...]) / a.peerfs([...])      # processes in the machine's network
    a.readdress("198.18.9.2")             # the machine gets a new address
    net.close()                           # kill (by PID), ip netns del

Processes started in a machine keep the root mount namespace (nsenter
--net only), so a FUSE mount made there is visible to the test. Grow this
harness (home routers, NAT, link cuts) by adding machines and links; the
naming and teardown stay here.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD_ENV = "PEERFS_NETNS_CHILD"
PREFIX_LEN = 15                 # 198.18.0.0/15: one flat internet


def _ip(*args, check=True):
    # `ip -n NS` is `ip netns exec NS ip`, which remounts / as a slave and
    # fails where / is not a mount point (a chroot); nsenter --net enters
    # the network namespace alone.
    argv = [str(a) for a in args]
    if len(argv) >= 2 and argv[0] == "-n":
        argv = ["nsenter", f"--net=/run/netns/{argv[1]}", "ip"] + argv[2:]
    else:
        argv = ["ip"] + argv
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and cp.returncode != 0:
        raise RuntimeError(f"ip {' '.join(map(str, args))}: {cp.stderr.strip()}")
    return cp


def _ip_tc(ns, args, check=True):
    argv = ["nsenter", f"--net=/run/netns/{ns}", "tc"] + [str(a) for a in args]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and cp.returncode != 0:
        raise RuntimeError(f"tc {' '.join(map(str, args))}: {cp.stderr.strip()}")
    return cp


def available():
    """None when namespaces work here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "nsenter"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            return f"{tool} is missing (scripts/install-deps)"
    return None


def isolated(request, timeout=600):
    """Call first in a test. In the parent: re-runs this very test in a
    child under `unshare -n`, fails with the child's output when the child
    fails, and returns True (the caller returns). In the child: False."""
    if os.environ.get(CHILD_ENV) == "1":
        return False
    why = available()
    if why:
        import pytest
        pytest.skip(why)
    nodeid = request.node.nodeid
    root = Path(request.config.rootpath)
    cmd = ["unshare", "-n", sys.executable, "-m", "pytest", "-q", "-x",
           "-p", "no:cacheprovider", str(root / nodeid)]
    env = dict(os.environ, **{CHILD_ENV: "1"})
    cp = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                        env=env, timeout=timeout, cwd=str(root))
    if cp.returncode != 0 or " passed" not in cp.stdout:
        import pytest
        pytest.fail(f"isolated run of {nodeid} exited {cp.returncode}\n"
                    f"{cp.stdout[-6000:]}\n{cp.stderr[-3000:]}", pytrace=False)
    return True


class Machine:
    def __init__(self, net, name, ns, addr, port_name):
        self.net = net
        self.name = name
        self.ns = ns
        self.addr = addr
        self.port_name = port_name      # its port on the bridge
        self.procs = []                 # Popen objects started here

    def cmd(self, argv):
        return ["nsenter", f"--net=/run/netns/{self.ns}"] + [str(a) for a in argv]

    def run(self, argv, timeout=120, check=False, env=None):
        cp = subprocess.run(self.cmd(argv), capture_output=True, text=True,
                            errors="replace", timeout=timeout, env=env,
                            stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(map(str, argv))} exited "
                               f"{cp.returncode}: {cp.stderr[-2000:]}")
        return cp

    def spawn(self, argv, env=None, **kw):
        p = subprocess.Popen(self.cmd(argv), env=env, stdin=subprocess.DEVNULL,
                             **kw)
        self.procs.append(p)
        self.net.pids.add(p.pid)
        return p

    def readdress(self, addr):
        """The machine's address changes (a new lease, a move)."""
        _ip("-n", self.ns, "addr", "del", f"{self.addr}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", self.ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", "eth0")
        self.addr = addr

    def cut(self):
        """Unplug the machine from the bridge: its packets vanish."""
        _ip("-n", self.net.switch, "link", "set", self.port_name, "down")

    def plug(self):
        _ip("-n", self.net.switch, "link", "set", self.port_name, "up")

    def shape(self, rate, send=True, receive=True, burst="32kbit"):
        """The machine's link gets slow: tbf at rate (tc syntax, "4mbit")
        on what it sends (its eth0) and on what it receives (its port on
        the bridge). This kernel has no netem: a slow link, not a delay.
        burst must hold what the rate sends in a timer tick (4 ms at
        HZ=250): 32kbit is enough up to 8mbit; give 10 ms worth above."""
        # latency: how long a packet may queue before tbf drops it (TCP
        # then backs off, as on a real slow uplink).
        tbf = ["tbf", "rate", rate, "burst", burst, "latency", "400ms"]
        if send:
            _ip_tc(self.ns, ["qdisc", "replace", "dev", "eth0", "root"] + tbf)
        if receive:
            _ip_tc(self.net.switch, ["qdisc", "replace", "dev",
                                     self.port_name, "root"] + tbf)

    def unshape(self):
        _ip_tc(self.ns, ["qdisc", "del", "dev", "eth0", "root"], check=False)
        _ip_tc(self.net.switch, ["qdisc", "del", "dev", self.port_name,
                                 "root"], check=False)


class Internet:
    """A bridge and the machines on it. Every name carries a tag unique to
    this run, so parallel or leftover runs never collide."""

    def __init__(self):
        self.tag = f"pf{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.machines = {}
        self.namespaces = []
        self.pids = set()               # every process to kill at close
        self.switch = f"{self.tag}-sw"
        self._add_ns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_ns(self, ns):
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def machine(self, name, addr):
        ns = f"{self.tag}-{name}"
        port = f"p{len(self.machines)}"
        self._add_ns(ns)
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name",
            port, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        m = Machine(self, name, ns, addr, port)
        self.machines[name] = m
        return m

    def track_pid(self, pid):
        self.pids.add(pid)

    def close(self):
        """Kills every process started here (by PID), then deletes every
        namespace. Safe to call twice; never raises."""
        for pid in list(self.pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 5
        for pid in list(self.pids):
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.02)
        self.pids.clear()
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)
        self.namespaces = []
