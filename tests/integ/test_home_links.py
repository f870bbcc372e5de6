"""Home links (issue 18, scenarios 2 and 4, and the ladder's re-checks):
suppliers behind home routers (netns.Router) whose links change under
them: a new outside address, mappings the router forgets, short NAT
timeouts, delay, loss and a slow uplink. Each test re-runs itself under
`unshare -n` (netns.isolated)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, wait_for
from netns import isolated
from test_home_routers import (homes, need_root_netns, node_id,  # noqa: F401
                               reach_of, stored_through_relay)
from test_network import (BOOT, PORT, NetMount, hired, read_tree,
                          record_stored, supplier_start, supplier_stop,
                          write_tree)

NFQ_DELAY = Path(os.environ.get("PEERFS_NFQ_DELAY") or
                 ROOT / "build" / "nfq_delay")

# Connects to HOST PORT, stays idle IDLE seconds, then sends a line and
# prints the echo, or "FAIL why".
IDLE_THEN_SEND = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
time.sleep(float(sys.argv[3]))
try:
    s.sendall(b"still there?\n"); print(s.makefile().readline().strip() or "FAIL eof")
except OSError as e:
    print("FAIL", e)
"""

# Echoes lines on every connection, until killed.
ECHO = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
print("listening", flush=True)
def echo(c):
    for line in c.makefile("rb"):
        c.sendall(line)
while True:
    threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()
"""

# Prints "ok" when a TCP connect to HOST PORT succeeds, else "FAIL why".
CAN_CONNECT = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close(); print("ok")
except OSError as e:
    print("FAIL", e)
"""

# Prints how long a TCP connect to HOST PORT took, in ms.
CONNECT_MS = r"""
import socket, sys, time
t = time.monotonic()
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).close()
print((time.monotonic() - t) * 1000)
"""

# The owner notices a silent supplier within seconds, and nothing that
# is only away for the length of a test is suspect or dead.
OWNER_FAST = ["--ping-interval", "1s", "--timeout", "3s",
              "--suspect-after", "10m", "--dead-after", "20m"]


@pytest.fixture
def links(homes):
    """homes (test_home_routers.py): the internet, three public suppliers
    and the owner's machine; here start(name, machine, extra) passes a
    supplier options of its own, and mount(name, machine) puts an owner
    on another machine. Built only in the isolated child."""
    if homes is None:
        yield None
        return
    w, made, plain_mount = homes, [], homes["mount"]

    def start(name, m, extra=()):
        home, store = w["tmp"] / f"{name}-home", w["tmp"] / f"{name}-store"
        pid = supplier_start(w["net"], m, home, store,
                             ["--bootstrap", f"{BOOT}:{PORT}"] + list(extra),
                             wait=False)
        w["sup"][name] = {"m": m, "home": home, "store": store, "pid": pid}
        return w["sup"][name]

    def mount(name="m", m=None):
        if m is None:
            return plain_mount(name)
        made.append(NetMount(w["tmp"], m, name))
        return made[-1]

    w["start"], w["mount"] = start, mount
    try:
        yield w
    finally:
        for mt in made:
            mt.cleanup()


def upnp_router(w):
    """The miniupnpd router (see netns.Router) at 11.0.0.2."""
    return w["net"].router("r1", "11.0.0.2", upnp=True,
                           outside_prefix="11.0.0.0/24")


def mapped_supplier(w, name, router, extra=()):
    """A supplier behind router (miniupnpd), once it is mapped on the
    router's outside address and its record is stored."""
    h = w["start"](name, router.machine(name), extra)
    wait_for(lambda: reach_of(h["home"]) == f"mapped {router.addr}:{PORT}",
             90, f"{name} mapped through NAT-PMP")
    record_stored(h["m"], h["home"])
    return h


def write_more(root, seed):
    """write_tree again, under a folder of its own."""
    (root / f"more{seed}").mkdir()
    return {f"more{seed}/{k}": v
            for k, v in write_tree(root / f"more{seed}", seed).items()}


def supplier_by_addr(mt):
    return {p["address"]: p for p in mt.status_json()["suppliers"]}


def test_outside_address_change_reaches_owner(request, links):
    """The router behind which a hired supplier sits gets a new outside
    address (the old one reaches nothing any more). The owner's session
    goes silent; the supplier, whose owner session times out, checks
    again (not at --reach-every, 5 min by default), renews its mapping,
    learns the new address from it, announces a new record; the owner
    looks it up by id, moves the supplier there, and writes and cold
    reads that need it go through it."""
    if isolated(request):
        return
    w = links
    r = upnp_router(w)
    h = mapped_supplier(w, "h1", r, ["--idle-timeout", "4s"])

    mt = w["mount"]().init()
    mt.mount([], ec="3+1", extra=["--bootstrap", f"{BOOT}:{PORT}"] + OWNER_FAST)
    assert f"11.0.0.2:{PORT}" in [a for _, a in hired(mt.home)], mt.log_tail()
    files = write_tree(mt.path, 11)
    mt.sync()

    r.new_outside_address("11.0.0.3")
    new = f"11.0.0.3:{PORT}"
    wait_for(lambda: reach_of(h["home"]) == f"mapped {new}", 45,
             "h1 announces the router's new outside address")
    log = (h["home"] / "supplier.log").read_text()
    assert "session went silent" in log, log[-3000:]
    wait_for(lambda: new in [a for _, a in hired(mt.home)], 45,
             "the owner moves h1 to its new address")
    wait_for(lambda: supplier_by_addr(mt).get(new, {}).get("state") ==
             "online", 30, "h1 online at its new address")

    files.update(write_more(mt.path, 12))
    mt.sync()
    p = supplier_by_addr(mt)[new]
    assert p["reach"] == "mapped" and p["fragments"] > 0, p
    # Without s2, every block needs h1's fragment (3 of 4).
    supplier_stop(w["sup"]["s2"]["pid"])
    mt.drop_cache()
    assert read_tree(mt.path) == files


def test_slow_lossy_home_link_is_only_slow(request, links):
    """A supplier on a bad home link (80 ms each way, 3% loss both ways,
    10 mbit), hired with public ones: an upload and a cold read that
    needs its fragments complete, slower; the owner, whose suspect and
    dead clocks are short here (15 s, 30 s), never marks it offline,
    suspect or dead: it is slow, not gone. A regression guard: the
    owner's request timeout (10 s) and pings already allow for such a
    link."""
    if isolated(request):
        return
    if not NFQ_DELAY.exists():
        pytest.fail(f"{NFQ_DELAY} is missing (make build/nfq_delay)",
                    pytrace=False)
    w = links
    r = upnp_router(w)
    r.shape(delay_ms=80, loss_pct=3, rate="10mbit", nfq_delay=NFQ_DELAY)
    h = mapped_supplier(w, "h1", r)
    addr = f"11.0.0.2:{PORT}"
    # The link is as slow as asked: a connect from the owner takes at
    # least 2 x 80 ms (the SYN in, its answer out).
    cp = w["owner"].run([sys.executable, "-c", CONNECT_MS, "11.0.0.2", PORT],
                        check=True)
    assert float(cp.stdout) >= 160, cp.stdout

    mt = w["mount"]().init()
    mt.mount([], ec="3+1", extra=["--bootstrap", f"{BOOT}:{PORT}",
                                  "--ping-interval", "2s",
                                  "--suspect-after", "15s",
                                  "--dead-after", "30s"])
    assert addr in [a for _, a in hired(mt.home)], mt.log_tail()
    t0 = time.monotonic()
    files = write_tree(mt.path, 21)
    mt.sync()
    t_up = time.monotonic() - t0
    assert supplier_by_addr(mt)[addr]["fragments"] > 0
    mt.umount()
    mt.mount([], ec="3+1", extra=["--ping-interval", "2s",
                                  "--suspect-after", "15s",
                                  "--dead-after", "30s"])
    # Without s2, every block needs h1's fragment (3 of 4).
    supplier_stop(w["sup"]["s2"]["pid"])
    mt.drop_cache()
    t0 = time.monotonic()
    assert read_tree(mt.path) == files
    t_read = time.monotonic() - t0
    print(f"bad home link: upload {t_up:.1f} s, cold read {t_read:.1f} s")
    st = supplier_by_addr(mt)
    assert st[addr]["state"] == "online", st[addr]
    log = mt.log_text()
    for word in ("offline", "suspect", "dead"):
        assert f"supplier {addr}: {word}" not in log, log[-3000:]


def test_short_nat_timeouts_sessions_kept_by_pings(request, links):
    """An owner behind a router that forgets idle TCP flows after 2 s and
    gives every new flow a random port (the harshest home router): a
    plain connection idle past that is dead (the control below), but the
    owner's sessions stay up through idle time, kept by its pings (the
    keepalive: --ping-interval, 30 s by default, here 0.5 s against the
    router's 2 s; the writer's own traffic, its index heads every
    3 s, would not do): after the idle time, every supplier is
    online, none ever went offline, and an upload after the idle time
    goes over the same sessions. A regression guard: pings were
    there before."""
    if isolated(request):
        return
    w = links
    net = w["net"]
    r = net.router("r1", "198.18.7.1", ports="random")
    r.set_conntrack_timeout("tcp", 2)
    home = r.machine("home")
    pub = w["sup"]["s1"]["m"]
    echo = pub.spawn([sys.executable, "-c", ECHO, 9000],
                     stdout=subprocess.PIPE, text=True)
    assert echo.stdout.readline().strip() == "listening"
    # The control: the router really forgets an idle flow.
    assert home.run([sys.executable, "-c", IDLE_THEN_SEND, pub.addr, 9000,
                     1], check=True).stdout.strip() == "still there?"
    got = home.run([sys.executable, "-c", IDLE_THEN_SEND, pub.addr, 9000, 5],
                   check=True).stdout.strip()
    assert got.startswith("FAIL"), got

    for name in ("boot", "s1", "s2"):
        record_stored(w["sup"][name]["m"], w["sup"][name]["home"])
    mt = w["mount"]("m", home).init()
    mt.mount([], ec="2+1", extra=["--bootstrap", f"{BOOT}:{PORT}",
                                  "--ping-interval", "500ms"])
    files = write_tree(mt.path, 31)
    mt.sync()
    # Idle for six of the router's timeouts (nothing but pings), then
    # an upload over the same sessions.
    time.sleep(12)
    files.update(write_more(mt.path, 32))
    mt.sync()
    mt.drop_cache()
    assert read_tree(mt.path) == files
    st = mt.status_json()["suppliers"]
    assert all(p["state"] == "online" for p in st), st
    log = mt.log_text()
    assert ": offline" not in log, log[-3000:]


def test_lapsed_mapping_is_made_again(request, links):
    """The home router forgets a supplier's port mapping (its rules
    flushed, as by a reboot): the port is closed from the internet until
    the supplier's next check (--reach-every 10 s here) maps it again;
    then an owner hires it there and stores on it. A regression guard:
    a full check always asked the router again."""
    if isolated(request):
        return
    w = links
    r = upnp_router(w)
    h = mapped_supplier(w, "h1", r, ["--reach-every", "10s"])
    addr = f"11.0.0.2:{PORT}"
    pub = w["owner"]

    def can_connect():
        return pub.run([sys.executable, "-c", CAN_CONNECT, "11.0.0.2", PORT],
                       check=True).stdout.strip()

    assert can_connect() == "ok"
    r.forget_mappings()
    got = can_connect()
    assert got.startswith("FAIL"), got
    wait_for(lambda: can_connect() == "ok", 30, "the mapping made again")
    assert reach_of(h["home"]) == f"mapped {addr}"

    mt = w["mount"]().init()
    mt.mount([], ec="3+1", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    assert addr in [a for _, a in hired(mt.home)], mt.log_tail()
    write_tree(mt.path, 41)
    mt.sync()
    p = supplier_by_addr(mt)[addr]
    assert p["state"] == "online" and p["fragments"] > 0, p


def test_relay_reservation_kept_through_short_nat_timeouts(request, links):
    """A supplier behind a router that forgets idle TCP flows after 3 s
    and gives each new flow a random port holds its reservation on a
    relay that asks for renewals every second (--relay-keepalive 1s):
    through ten seconds of nothing else, the reservation's connection
    stays the same one (reserved once, never dropped by the relay), and
    an owner on the internet then stores and cold-reads through it. With
    a keepalive longer than the router's timeout (the 20 s default here)
    the router forgets the flow, the relay drops the reservation and the
    supplier reserves again: this test fails."""
    if isolated(request):
        return
    w = links
    net = w["net"]
    relay = w["start"]("relay", net.machine("relay", "198.18.3.2"),
                       ["--relay", "--relay-keepalive", "1s"])
    r = net.router("r8", "198.18.8.8", ports="random")
    r.set_conntrack_timeout("tcp", 3)
    h = w["start"]("h8", r.machine("h8"))
    rid = node_id(relay["home"])
    wait_for(lambda: reach_of(h["home"]) ==
             f"relay via {rid[:16]} 198.18.3.2:{PORT}", 90,
             "h8 reserved on the relay")
    record_stored(h["m"], h["home"])
    # The control: the router really forgets an idle flow.
    pub = w["sup"]["s1"]["m"]
    echo = pub.spawn([sys.executable, "-c", ECHO, 9000],
                     stdout=subprocess.PIPE, text=True)
    assert echo.stdout.readline().strip() == "listening"
    got = h["m"].run([sys.executable, "-c", IDLE_THEN_SEND, pub.addr, 9000,
                      5], check=True).stdout.strip()
    assert got.startswith("FAIL"), got
    time.sleep(10)
    hlog = (h["home"] / "supplier.log").read_text()
    rlog = (relay["home"] / "supplier.log").read_text()
    assert hlog.count("relay: reserved on") == 1, hlog[-3000:]
    assert "not renewed" not in rlog, rlog[-3000:]

    mt = w["mount"]().init()
    mt.mount([], ec="3+2", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    name = f"198.18.3.2:{PORT}~{node_id(h['home'])[:16]}"
    assert name in [a for _, a in hired(mt.home)], \
        (hired(mt.home), mt.log_tail())
    files = stored_through_relay(mt, name, rid, 41)
    mt.drop_cache()
    assert read_tree(mt.path) == files
