"""Home routers in the namespace harness (issue 18, first part): machines
behind router namespaces (netns.Router) with nftables masquerade and the
drop-unsolicited policies of a real home router; one router runs miniupnpd.
Each test re-runs itself under `unshare -n` (netns.isolated)."""

import os
import subprocess
import sys

import pytest

from conftest import run_peerfs, wait_for
from netns import CHILD_ENV, Internet, isolated
from test_network import (BOOT, PORT, hired, net_world, read_tree,
                          record_stored, supplier_stop, world_supplier,
                          write_tree)

# A listener that accepts connections and answers each with the address
# it saw the connection come from ("IP PORT"), until killed.
SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
print("listening", flush=True)
while True:
    c, a = s.accept(); c.sendall(f"{a[0]} {a[1]}\n".encode()); c.close()
"""

# Connects (from a fixed source port when given) and prints what the
# server saw, or "FAIL why".
CLIENT = r"""
import socket, sys
s = socket.socket(); s.settimeout(float(sys.argv[4]))
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if int(sys.argv[3]): s.bind(("0.0.0.0", int(sys.argv[3])))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print(s.makefile().readline().strip())
except OSError as e:
    print("FAIL", e)
"""


def serve(m, port):
    p = m.spawn([sys.executable, "-c", SERVER, "0.0.0.0", port],
                stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "listening"
    return p


def dial(m, addr, port, sport=0, timeout=3):
    cp = m.run([sys.executable, "-c", CLIENT, addr, port, sport, timeout],
               check=True)
    return cp.stdout.strip()


@pytest.fixture
def net(need_root_netns):
    n = Internet()
    yield n
    n.close()


@pytest.fixture
def need_root_netns():
    from netns import available
    why = available()
    if why:
        pytest.skip(why)


def test_port_preserving_router(request, net):
    """A home machine reaches the internet through masquerade, seen as
    the router's address and its own source port; nothing unsolicited
    comes in, neither to the router nor to a port the machine used."""
    if isolated(request):
        return
    pub = net.machine("pub", "198.18.0.10")
    r = net.router("r1", "198.18.7.1")
    h = r.machine("h")
    assert h.addr.startswith("192.168.")
    serve(pub, 9000)
    serve(h, 9001)
    assert dial(h, pub.addr, 9000, sport=40001) == f"{r.addr} 40001"
    # Unsolicited: to the router itself, and to the port just used.
    assert dial(pub, r.addr, 9001, timeout=1).startswith("FAIL")
    assert dial(pub, r.addr, 40001, timeout=1).startswith("FAIL")
    assert dial(pub, h.addr, 9001, timeout=1).startswith("FAIL")


def test_random_port_router(request, net):
    """masquerade random,fully-random: the same source port comes out as
    other ports (three flows: one could keep its port by chance)."""
    if isolated(request):
        return
    pub = net.machine("pub", "198.18.0.10")
    r = net.router("r2", "198.18.7.2", ports="random")
    h = r.machine("h")
    serve(pub, 9000)
    seen = [dial(h, pub.addr, 9000, sport=40001 + i) for i in range(3)]
    assert all(s.split()[0] == r.addr for s in seen), seen
    assert any(s != f"{r.addr} {40001 + i}" for i, s in enumerate(seen)), seen


def test_miniupnpd_router_maps_a_port(request, net):
    """The UPnP router (outside address outside the reserved ranges, see
    netns.Router): a NAT-PMP mapping opens a port a public machine can
    connect to; unmapped ports stay closed."""
    if isolated(request):
        return
    pub = net.machine("pub", "198.18.0.10")
    r = net.router("r3", "11.0.0.2", upnp=True, outside_prefix="11.0.0.0/24")
    h = r.machine("h")
    serve(h, 8000)
    serve(h, 8001)
    cp = h.run(["natpmpc", "-g", f"{r.lan}.1", "-a", "8000", "8000", "tcp",
                "60"], check=True)
    assert "Public IP address : 11.0.0.2" in cp.stdout, cp.stdout
    assert "Mapped public port 8000" in cp.stdout, cp.stdout
    assert dial(pub, r.addr, 8000).split()[0] == pub.addr
    assert dial(pub, r.addr, 8001, timeout=1).startswith("FAIL")


def test_double_nat_outside_address_is_private(request, net):
    """A miniupnpd router behind another router: its outside address is
    private, and miniupnpd 2.3.1 then refuses NAT-PMP itself (result 3,
    "network failure"): the home machine learns no public address and
    gets no mapping, and the public machine cannot come in."""
    if isolated(request):
        return
    pub = net.machine("pub", "198.18.0.10")
    outer = net.router("r4", "198.18.7.4")
    inner = net.router("r5", None, upnp=True, behind=outer)
    h = inner.machine("h")
    assert inner.addr.startswith(outer.lan + ".")
    serve(h, 8000)
    serve(pub, 9000)
    # Outbound works through both NATs, seen as the outer router.
    assert dial(h, pub.addr, 9000).split()[0] == outer.addr
    cp = h.run(["natpmpc", "-g", f"{inner.lan}.1", "-a", "8000", "8000",
                "tcp", "60"])
    assert cp.returncode != 0, cp.stdout
    assert "Mapped public port" not in cp.stdout, cp.stdout
    assert "network failure" in cp.stderr, cp.stderr
    assert dial(pub, outer.addr, 8000, timeout=1).startswith("FAIL")


# ---- the reachability ladder (net/reach.c) with real suppliers ----------

def reach_of(home):
    p = home / "reach"
    return p.read_text().strip() if p.exists() else ""


@pytest.fixture
def homes(tmp_path, need_fuse):
    """The internet with three public suppliers (the first is the DHT's
    bootstrap), the owner's machine, and a home supplier behind each kind
    of router the test asks for. Built only in the isolated child."""
    if os.environ.get(CHILD_ENV) != "1":
        yield None
        return

    def build(w):
        def start(name, m, more=()):
            return world_supplier(w, name, m, more)
        for name, addr in [("boot", BOOT), ("s1", "198.18.1.2"),
                           ("s2", "198.18.2.2")]:
            start(name, w["net"].machine(name, addr))
        w["start"] = start
    yield from net_world(tmp_path, build)


def test_mapped_supplier_hired_unreachable_one_not(request, homes):
    """A supplier behind the miniupnpd router maps its port by NAT-PMP,
    a dial-back finds it there, and it announces the router's outside
    address; one behind a router without NAT-PMP is not reachable and is
    never announced. An owner on the internet hires the mapped one (not
    the other), stores and cold-reads through it; `status` says `mapped`
    for it and `direct` for the public ones."""
    if isolated(request):
        return
    w = homes
    net = w["net"]
    r1 = net.router("r1", "11.0.0.2", upnp=True, outside_prefix="11.0.0.0/24")
    r2 = net.router("r2", "198.18.7.2")
    h1 = w["start"]("h1", r1.machine("h1"))
    h2 = w["start"]("h2", r2.machine("h2"))
    wait_for(lambda: reach_of(h1["home"]) == f"mapped 11.0.0.2:{PORT}", 90,
             "h1 mapped through NAT-PMP")
    wait_for(lambda: reach_of(h2["home"]) == "not reachable", 90,
             "h2 found not reachable")
    wait_for(lambda: reach_of(w["sup"]["boot"]["home"]) ==
             f"direct {BOOT}:{PORT}", 90, "boot found direct")
    record_stored(h1["m"], h1["home"])
    log2 = (h2["home"] / "supplier.log").read_text()
    assert "our record is stored" not in log2, log2[-3000:]

    mt = w["mount"]().init()
    mt.mount([], ec="3+1", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    addrs = sorted(a for _, a in hired(mt.home))
    assert f"11.0.0.2:{PORT}" in addrs, (addrs, mt.log_tail())
    assert not any(a.startswith("192.168.") or a.startswith(r2.addr)
                   for a in addrs), addrs
    files = write_tree(mt.path, 7)
    mt.sync()
    st = mt.status_json()
    by = {p["address"]: p for p in st["suppliers"]}
    assert by[f"11.0.0.2:{PORT}"]["reach"] == "mapped", st["suppliers"]
    assert by[f"11.0.0.2:{PORT}"]["fragments"] > 0, st["suppliers"]
    assert by[f"{BOOT}:{PORT}"]["reach"] == "direct", st["suppliers"]
    text = run_peerfs(["status", mt.path], check=True).stdout
    assert any(f"11.0.0.2:{PORT}" in line and line.rstrip().endswith("mapped")
               for line in text.splitlines()), text
    mt.umount()
    mt.mount([], ec="3+1")
    mt.drop_cache()
    assert read_tree(mt.path) == files


def test_double_nat_supplier_not_reachable(request, homes):
    """A supplier behind a miniupnpd router that sits behind another
    router: no usable mapping (the inner router's outside address is
    private), so it is reported not reachable and not announced."""
    if isolated(request):
        return
    w = homes
    net = w["net"]
    outer = net.router("r4", "198.18.7.4")
    inner = net.router("r5", None, upnp=True, behind=outer)
    h = w["start"]("h3", inner.machine("h3"))
    wait_for(lambda: reach_of(h["home"]) == "not reachable", 90,
             "h3 found not reachable")
    log = (h["home"] / "supplier.log").read_text()
    assert "NAT-PMP" in log, log[-3000:]
    assert "our record is stored" not in log, log[-3000:]


def test_upnp_only_router_maps(request, homes):
    """A router that answers UPnP IGD but not NAT-PMP: the supplier maps
    its port through UPnP, a dial-back finds it there, and its record
    (the router's outside address) is stored."""
    if isolated(request):
        return
    w = homes
    r = w["net"].router("r6", "11.0.1.2", upnp=True,
                        outside_prefix="11.0.1.0/24", natpmp=False)
    h = w["start"]("h4", r.machine("h4"))
    wait_for(lambda: reach_of(h["home"]) == f"mapped 11.0.1.2:{PORT}", 90,
             "h4 mapped through UPnP")
    record_stored(h["m"], h["home"])
    log = (h["home"] / "supplier.log").read_text()
    assert "reach: mapped at 11.0.1.2" in log, log[-3000:]
    assert "UPNP" in r.miniupnpd_log.read_text().upper(), \
        r.miniupnpd_log.read_text()[-2000:]


# ---- relays (net/relay.c) ------------------------------------------------

def node_id(home):
    return run_peerfs(["id", "--home", str(home)], check=True).stdout.strip()


def stored_through_relay(mt, name, rid, seed):
    """Writes a tree on mt and checks that the relayed supplier `name`
    holds fragments of it and is reported `relay via` the relay rid."""
    files = write_tree(mt.path, seed)
    mt.sync()
    st = mt.status_json()
    by = {p["address"]: p for p in st["suppliers"]}
    assert by[name]["reach"] == f"relay via {rid[:16]}", st["suppliers"]
    assert by[name]["fragments"] > 0, st["suppliers"]
    return files


def test_relayed_supplier_behind_random_port_router(request, homes):
    """A supplier behind the random-port router without UPnP can be
    neither dialled nor mapped: it reserves on the public supplier that
    offers relaying (--relay), and its record names that relay. An owner
    on the internet hires it, stores through the relay and cold-reads
    back; `status` says `relay via ID` for it. The relay pipes bytes whose
    content it cannot read: its store holds none of the owner's files in
    the clear, and it logs only the circuit."""
    if isolated(request):
        return
    w = homes
    net = w["net"]
    relay = w["start"]("relay", net.machine("relay", "198.18.3.2"),
                       ["--relay"])
    r = net.router("r7", "198.18.7.7", ports="random")
    h = w["start"]("h5", r.machine("h5"))
    rid = node_id(relay["home"])
    want = f"relay via {rid[:16]} 198.18.3.2:{PORT}"
    wait_for(lambda: reach_of(h["home"]) == want, 90,
             "h5 reserved on the relay")
    record_stored(h["m"], h["home"])

    mt = w["mount"]().init()
    # Five suppliers, 3+2: every one is hired, the relayed one included.
    mt.mount([], ec="3+2", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    hid = node_id(h["home"])
    name = f"198.18.3.2:{PORT}~{hid[:16]}"
    assert name in [a for _, a in hired(mt.home)], \
        (hired(mt.home), mt.log_tail())
    files = stored_through_relay(mt, name, rid, 11)
    text = run_peerfs(["status", mt.path], check=True).stdout
    assert any(name in line and f"relay via {rid[:16]}" in line
               for line in text.splitlines()), text
    # The bytes the relay carried for this home count toward its balance
    # in the fair deal: the home's ledger credits them to the relay's id.
    def relayed():
        p = mt.home / "ledger"
        for line in (p.read_text().splitlines() if p.exists() else []):
            f = line.split()
            if f[0] == rid and len(f) == 7:
                return int(f[6])
        return 0
    wait_for(lambda: relayed() > 1 << 20, 30,
             "the relay's carried bytes in the ledger")
    mt.umount()
    # Two public suppliers gone: three fragments of each block are left,
    # one of them behind the relay, so every cold read goes through it.
    for gone in ("s1", "s2"):
        supplier_stop(w["sup"][gone]["pid"])
    mt.mount([], ec="3+2")
    mt.drop_cache()
    assert read_tree(mt.path) == files
    st = mt.status_json()
    by = {p["address"]: p for p in st["suppliers"]}
    assert by[name]["state"] == "online", st["suppliers"]
    assert by[f"198.18.3.2:{PORT}"]["state"] == "online", st["suppliers"]
    rlog = (relay["home"] / "supplier.log").read_text()
    assert "relay: reservation for" in rlog, rlog[-3000:]


# Sends one circuit request to a relay and prints its answer: "ERRNO
# TEXT", or "CLOSED" when it closes without one.
CIRCUIT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
s.sendall(bytes.fromhex(sys.argv[3]))
a = b""
while len(a) < 64:
    b = s.recv(64 - len(a))
    if not b:
        break
    a += b
print(f"{a[0]} {a[2:2 + a[1]].decode()}" if len(a) == 64 else "CLOSED")
"""


def circuit(m, addr, req):
    return m.run([sys.executable, "-c", CIRCUIT, addr, PORT, req.hex()],
                 check=True).stdout.strip()


def test_relay_limits_refuse_clearly(request, homes):
    """A relay that holds one reservation at most (--relay-reservations
    1): of two home suppliers behind random-port routers, one reserves
    and the other is refused with the relay's reason; circuit requests
    for a node without a reservation, of an unknown kind or malformed
    get a clear refusal or a closed connection, and the relay goes on
    serving: an owner stores on the relayed supplier and reads back."""
    if isolated(request):
        return
    w = homes
    net = w["net"]
    relay = w["start"]("relay", net.machine("relay", "198.18.3.2"),
                       ["--relay", "--relay-reservations", "1"])
    hs = [w["start"](n, net.router(r, a, ports="random").machine(n))
          for n, r, a in [("h5", "r7", "198.18.7.7"),
                          ("h6", "r8", "198.18.7.8")]]
    rid = node_id(relay["home"])
    want = f"relay via {rid[:16]} 198.18.3.2:{PORT}"

    def refused(h):
        return "relay 198.18.3.2:7070 refused our reservation: relay " \
               "full: 1 reservations" in (h["home"] / "supplier.log").read_text()
    wait_for(lambda: any(reach_of(h["home"]) == want for h in hs) and
             any(refused(h) for h in hs), 90,
             "one home supplier reserved, the other refused")
    held = next(h for h in hs if reach_of(h["home"]) == want)
    other = next(h for h in hs if h is not held)
    assert reach_of(other["home"]) == "not reachable"

    magic = b"PFRELAY1"
    owner = w["owner"]
    oid = bytes.fromhex(node_id(other["home"]))
    assert circuit(owner, "198.18.3.2", magic + b"\x01" + oid) == \
        "2 no reservation here for that node"
    assert circuit(owner, "198.18.3.2", magic + b"\x07" + bytes(32)) == \
        "71 unknown circuit request"
    assert circuit(owner, "198.18.3.2",
                   magic + b"\x02" + bytes(range(32))) == \
        "2 no such circuit (taken, or too late)"
    assert circuit(owner, "198.18.3.2", b"GET / HTTP/1.0\r\n" * 3) == \
        "CLOSED"
    # A request begun and never finished is not held for ever.
    assert circuit(owner, "198.18.3.2", magic + b"\x01") == "CLOSED"

    mt = w["mount"]().init()
    mt.mount([], ec="3+2", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    name = f"198.18.3.2:{PORT}~{node_id(held['home'])[:16]}"
    files = stored_through_relay(mt, name, rid, 5)
    mt.drop_cache()
    assert read_tree(mt.path) == files
    assert relay["m"].run(["kill", "-0", str(relay["pid"])]).returncode == 0


def test_relay_dies_clients_move(request, homes):
    """A home supplier behind the random-port router holds reservations on
    both relays. The relay the owner reaches it through is killed: reads
    go on from the other fragments meanwhile, the supplier's record then
    names only the other relay, and the owner reaches it there (status
    `relay via` the other relay's id, online)."""
    if isolated(request):
        return
    w = homes
    net = w["net"]
    relays = [w["start"](n, net.machine(n, a), ["--relay"])
              for n, a in [("relay", "198.18.3.2"), ("relay2", "198.18.4.2")]]
    h = w["start"]("h5", net.router("r7", "198.18.7.7",
                                    ports="random").machine("h5"))
    log = h["home"] / "supplier.log"
    wait_for(lambda: log.exists() and
             log.read_text().count("relay: reserved on ") == 2, 90,
             "h5 reserved on both relays")
    record_stored(h["m"], h["home"])
    mt = w["mount"]().init()
    mt.mount([], ec="3+2", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    hid = node_id(h["home"])[:16]
    names = [a for _, a in hired(mt.home) if a.endswith("~" + hid)]
    assert len(names) == 1, (hired(mt.home), mt.log_tail())
    first = names[0].split("~")[0]
    dead = next(r for r in relays if first == f"{r['m'].addr}:{PORT}")
    alive = next(r for r in relays if r is not dead)
    files = write_tree(mt.path, 13)
    mt.sync()
    os.kill(dead["pid"], 9)
    mt.drop_cache()
    assert read_tree(mt.path) == files
    aid = node_id(alive["home"])[:16]
    moved = f"{alive['m'].addr}:{PORT}~{hid}"

    def there():
        by = {p["address"]: p for p in mt.status_json()["suppliers"]}
        return moved in by and by[moved]["state"] == "online" and \
            by[moved]["reach"] == f"relay via {aid}"
    wait_for(there, 60, "the owner reaches h5 through the other relay")
    assert moved in [a for _, a in hired(mt.home)], hired(mt.home)
    mt.drop_cache()
    assert read_tree(mt.path) == files
