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
    r = net.router("r1", "198.18.7.1")    # a home router (see Router)
    h = r.machine("h")                    # 192.168.N.2 behind it
    net.close()                           # kill (by PID), ip netns del

Processes started in a machine keep the root mount namespace (nsenter
--net only), so a FUSE mount made there is visible to the test. Grow this
harness (home routers, NAT, link cuts) by adding machines and links; the
naming and teardown stay here.
"""

import os
import secrets
import shutil
import tempfile
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
        self.extra_prefixes = []        # outside prefixes beyond /15
        self.routers = {}
        self.lans = 0
        self.tmpdirs = []
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
        for prefix in self.extra_prefixes:
            _ip("-n", ns, "route", "add", prefix, "dev", "eth0")
        m = Machine(self, name, ns, addr, port)
        self.machines[name] = m
        return m

    def router(self, name, addr, ports="preserve", upnp=False,
               outside_prefix=None, behind=None, natpmp=True):
        """A home router (see Router). addr is its outside address: on the
        bridge (198.18.0.0/15), or in outside_prefix (e.g. "11.0.0.0/24",
        for miniupnpd, which refuses reserved outside addresses: every
        machine on the bridge then gets an on-link route to it; only ever
        inside the isolated child). behind=another Router puts this one on
        that router's LAN (double NAT); addr is then ignored. natpmp=False:
        miniupnpd answers UPnP IGD only."""
        r = Router(self, name, addr, ports, upnp, outside_prefix, behind,
                   natpmp)
        self.routers[name] = r
        return r

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
        for d in self.tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
        self.tmpdirs = []


# The router's ruleset: masquerade on the outside, and the forward and
# input policies of a real home router (nothing unsolicited comes in; a
# forward that miniupnpd opened, `ct status dnat`, does). The input rule
# matters: without it a stray packet to the router makes conntrack, and
# masquerade then picks another port (NETWORK-NOTES.md). Chain names avoid
# the nftables keywords `fwd` and `fw`. The `filter` table and the
# miniupnpd chains are those miniupnpd's config below names; without
# miniupnpd they stay empty.
RULESET = """
table inet filter {
    chain miniupnpd { }
    chain forward_home {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan0" accept
        ct status dnat accept
        jump miniupnpd
    }
    chain input_home {
        type filter hook input priority 0; policy accept;
        iifname "wan0" ct state established,related accept
        iifname "wan0" ct state new drop
    }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
    chain prerouting_home {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting_home {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "wan0" masquerade%s
    }
}
"""

MINIUPNPD_CONF = """ext_ifname=wan0
listening_ip=lan0
port=0
enable_natpmp=%s
enable_upnp=yes
secure_mode=yes
system_uptime=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=filter
upnp_nat_table_name=filter
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 192.168.0.0/16 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""


class Router:
    """A home router: a namespace whose wan0 is on the bridge (or on the
    LAN of another router) and whose lan0 is a bridge for 192.168.N.0/24,
    the router at .1. nftables masquerades on wan0; unsolicited inbound
    packets are dropped (forward and input), established/related pass.

    ports: "preserve" (Linux masquerade keeps the source port when it can)
    or "random" (masquerade random,fully-random: every flow a new port).
    upnp=True runs miniupnpd (NAT-PMP and UPnP IGD) on lan0; its pid is
    tracked like every other process, its files live in a temp dir;
    natpmp=False leaves NAT-PMP off (UPnP IGD only)."""

    def __init__(self, net, name, addr, ports, upnp, outside_prefix, behind,
                 natpmp=True):
        if ports not in ("preserve", "random"):
            raise ValueError(f"ports: {ports!r}")
        if upnp and shutil.which("miniupnpd") is None:
            raise RuntimeError("miniupnpd is missing (scripts/install-deps)")
        self.net = net
        self.name = name
        self.ns = f"{net.tag}-{name}"
        net.lans += 1
        self.lan_index = net.lans
        self.lan = f"192.168.{self.lan_index}"
        self.hosts = {}
        self.behind = behind
        self.miniupnpd = None
        net._add_ns(self.ns)
        ns = self.ns
        if behind is None:
            self.port_name = f"p{len(net.machines) + len(net.routers)}r"
            _ip("-n", ns, "link", "add", "wan0", "type", "veth", "peer",
                "name", self.port_name, "netns", net.switch)
            _ip("-n", net.switch, "link", "set", self.port_name, "master",
                "br0", "up")
            self.wan_plen = PREFIX_LEN
            if outside_prefix:
                plen = outside_prefix.split("/")[1]
                self.wan_plen = plen
                _ip("-n", ns, "addr", "add", f"{addr}/{plen}", "dev", "wan0")
                _ip("-n", ns, "link", "set", "wan0", "up")
                _ip("-n", ns, "route", "add", f"198.18.0.0/{PREFIX_LEN}",
                    "dev", "wan0")
                net.extra_prefixes.append(outside_prefix)
                for m in net.machines.values():
                    _ip("-n", m.ns, "route", "add", outside_prefix, "dev", "eth0")
            else:
                _ip("-n", ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", "wan0")
                _ip("-n", ns, "link", "set", "wan0", "up")
            self.addr = addr
        else:
            self.wan_plen = 24
            self.addr = behind._attach(ns, "wan0")
            _ip("-n", ns, "link", "set", "wan0", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"{behind.lan}.1")
        _ip("-n", ns, "link", "add", "lan0", "type", "bridge")
        _ip("-n", ns, "addr", "add", f"{self.lan}.1/24", "dev", "lan0")
        _ip("-n", ns, "link", "set", "lan0", "up")
        self.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        extra = " random,fully-random" if ports == "random" else ""
        cp = subprocess.run(self.cmd(["nft", "-f", "-"]), input=RULESET % extra,
                            capture_output=True, text=True, timeout=30)
        if cp.returncode:
            raise RuntimeError(f"router {name}: nft: {cp.stderr.strip()}")
        if upnp:
            self._start_miniupnpd(natpmp)

    def cmd(self, argv):
        return ["nsenter", f"--net=/run/netns/{self.ns}"] + [str(a) for a in argv]

    def run(self, argv, timeout=60, check=False):
        cp = subprocess.run(self.cmd(argv), capture_output=True, text=True,
                            errors="replace", timeout=timeout,
                            stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise RuntimeError(f"router {self.name}: {' '.join(map(str, argv))} "
                               f"exited {cp.returncode}: {cp.stderr[-2000:]}")
        return cp

    def _attach(self, ns, ifname):
        """A veth from namespace ns (named ifname there) into lan0; returns
        the address it got."""
        n = len(self.hosts) + 2
        addr = f"{self.lan}.{n}"
        port = f"l{n}"
        _ip("-n", ns, "link", "add", ifname, "type", "veth", "peer", "name",
            port, "netns", self.ns)
        _ip("-n", self.ns, "link", "set", port, "master", "lan0", "up")
        _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
        self.hosts[f"{ifname}@{ns}"] = addr
        return addr

    def machine(self, name):
        """A home machine on this router's LAN (eth0 192.168.N.x, default
        route through the router)."""
        ns = f"{self.net.tag}-{name}"
        self.net._add_ns(ns)
        addr = self._attach(ns, "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{self.lan}.1")
        m = Machine(self.net, name, ns, addr, None)
        self.net.machines[name] = m
        return m

    def set_conntrack_timeout(self, proto, seconds):
        """An aggressive NAT: e.g. ("udp", 5)."""
        key = {"udp": "nf_conntrack_udp_timeout",
               "tcp": "nf_conntrack_tcp_timeout_established"}[proto]
        self.run(["sysctl", "-qw", f"net.netfilter.{key}={seconds}"], check=True)

    def new_outside_address(self, addr):
        """The provider hands the router another outside address (a new
        lease): wan0 gets addr, and nothing sent to the old one reaches
        the router any more (upstream it is someone else's now).
        Conntrack's masqueraded flows of the old address go with it, as on
        a real router. (The old address goes first: miniupnpd 2.3.1, told
        of a new address while the old one is still there, answers
        NAT-PMP with "network failure" from then on.)"""
        plen = self.wan_plen
        old = self.addr
        self.run(["ip", "addr", "del", f"{old}/{plen}", "dev", "wan0"],
                 check=True)
        self.run(["ip", "addr", "add", f"{addr}/{plen}", "dev", "wan0"],
                 check=True)
        if str(plen) != str(PREFIX_LEN):
            # The last address took the interface's routes with it.
            self.run(["ip", "route", "replace", f"198.18.0.0/{PREFIX_LEN}",
                      "dev", "wan0"], check=True)
        cp = subprocess.run(self.cmd(["nft", "-f", "-"]), input=f"""
table ip isp {{
    chain gone {{
        type filter hook prerouting priority -300; policy accept;
        ip daddr {old} drop
    }}
}}
""", capture_output=True, text=True, timeout=30)
        if cp.returncode:
            raise RuntimeError(f"router {self.name}: nft: {cp.stderr.strip()}")
        self.addr = addr

    def shape(self, delay_ms=0, loss_pct=0, rate=None, nfq_delay=None,
              queue=1):
        """A slow, lossy home link: every packet the router forwards, both
        ways. loss_pct: nftables `numgen random` drops that many percent;
        delay_ms: held that long (this kernel has no netem: nfq_delay,
        tests/tools/, holds each packet on an NFQUEUE queue that
        iptables-legacy feeds; the router is
        the receiver of what it forwards, so no sender's TCP Small Queues
        are held back, see NETWORK-NOTES.md); rate ("10mbit"): tc tbf on
        wan0 (up) and lan0 (down). The queue is `bypass`: without the
        helper packets pass undelayed, never vanish."""
        rules = []
        if loss_pct:
            rules.append(f"numgen random mod 100 < {int(loss_pct)} drop")
        if delay_ms:
            if not nfq_delay:
                raise ValueError("delay_ms needs the nfq_delay helper")
            p = subprocess.Popen(self.cmd([nfq_delay, queue, int(delay_ms)]),
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, text=True)
            self.net.pids.add(p.pid)
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"router {self.name}: nfq_delay did not "
                                   f"start (exit {p.poll()})")
            # The nft `queue` expression (nft_queue) is not built for this
            # kernel; iptables-legacy's NFQUEUE target is.
            self.run(["iptables-legacy", "-t", "mangle", "-A", "FORWARD",
                      "-j", "NFQUEUE", "--queue-num", int(queue),
                      "--queue-bypass"], check=True)
        if rules:
            body = "\n        ".join(rules)
            cp = subprocess.run(self.cmd(["nft", "-f", "-"]), input=f"""
table inet link {{
    chain shape {{
        type filter hook forward priority -10; policy accept;
        {body}
    }}
}}
""", capture_output=True, text=True, timeout=30)
            if cp.returncode:
                raise RuntimeError(f"router {self.name}: nft: {cp.stderr.strip()}")
        if rate:
            for dev in ("wan0", "lan0"):
                self.run(["tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                          "rate", rate, "burst", "32kbit", "latency", "400ms"],
                         check=True)

    def forget_mappings(self):
        """The router forgets every port mapping (a reboot, a lease it
        dropped early): miniupnpd's forwarding rules are flushed."""
        for chain in ("prerouting_miniupnpd", "miniupnpd"):
            self.run(["nft", "flush", "chain", "inet", "filter", chain],
                     check=True)

    def _start_miniupnpd(self, natpmp):
        d = tempfile.mkdtemp(prefix=f"{self.ns}-upnp-")
        self.net.tmpdirs.append(d)
        conf = Path(d) / "miniupnpd.conf"
        conf.write_text(MINIUPNPD_CONF % ("yes" if natpmp else "no"))
        log = open(Path(d) / "miniupnpd.log", "w")
        # -d: stay in the foreground (our pid is its pid) and log to stderr.
        p = subprocess.Popen(self.cmd(["miniupnpd", "-d", "-f", conf,
                                       "-P", Path(d) / "miniupnpd.pid"]),
                             stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT)
        log.close()                     # the child has its own
        self.net.pids.add(p.pid)
        self.miniupnpd = p
        self.miniupnpd_log = Path(d) / "miniupnpd.log"
        # Ready once it listens for SSDP (UDP 1900), HTTP (its log says
        # so) and, when on, NAT-PMP (UDP 5351).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if p.poll() is not None:
                break
            ports = [1900] + ([5351] if natpmp else [])
            if all(self.run(["ss", "-Hlun", "sport", f"= :{port}"]).stdout.strip()
                   for port in ports) and \
                    "HTTP listening" in self.miniupnpd_log.read_text():
                return
            time.sleep(0.05)
        raise RuntimeError(f"router {self.name}: miniupnpd did not start: "
                           f"{self.miniupnpd_log.read_text()[-2000:]}")
