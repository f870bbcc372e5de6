"""Hole punching (issue 18, net/punch.c): a session through a relay
between an owner and a supplier, each behind a home router, becomes a
direct connection when both routers keep ports, and stays relayed when
one randomises them. Real suppliers, a real relay, real routers
(netns.Router) with the drop-unsolicited policies of home routers; each
test re-runs itself under `unshare -n`."""

import errno

from conftest import run_peerfs, wait_for
from netns import isolated
from test_home_routers import homes, need_root_netns, node_id, reach_of  # noqa: F401 (fixtures)
from test_network import (BOOT, PORT, NetMount, read_tree, record_stored,
                          supplier_stop, write_tree)

RELAY = "198.18.3.2"


def reach_in_status(mt, name):
    st = mt.status_json()
    by = {p["address"]: p for p in st["suppliers"]}
    return by.get(name, {})


def relay_conns_from(relay, addr):
    """Established TCP connections the relay holds from addr."""
    out = relay["m"].run(["ss", "-Htn", "state", "established"],
                         check=True).stdout
    return [line for line in out.splitlines()
            if f" {addr}:" in line and f"{RELAY}:{PORT}" in line]


def relayed_home(w, router_addr, ports, name):
    """A relay on the internet and a home supplier behind a router
    (no UPnP) that reserved on it; returns (relay, home, address the
    owner knows the home by, relay id)."""
    net = w["net"]
    relay = w["start"]("relay", net.machine("relay", RELAY), ["--relay"])
    r = net.router("r" + name, router_addr, ports=ports)
    h = w["start"](name, r.machine(name))
    rid = node_id(relay["home"])
    wait_for(lambda: reach_of(h["home"]) ==
             f"relay via {rid[:16]} {RELAY}:{PORT}", 50,
             f"{name} reserved on the relay")
    record_stored(h["m"], h["home"])
    return relay, h, f"{RELAY}:{PORT}~{node_id(h['home'])[:16]}", rid


def home_owner(w, router_addr):
    r = w["net"].router("rowner", router_addr)
    return NetMount(w["tmp"], r.machine("howner"), "m")


def test_relayed_session_upgrades_to_direct(request, homes):
    """Owner and supplier behind two port-keeping routers: the session
    starts through the relay, becomes direct by TCP simultaneous open
    (`status`: direct (punched)), and the relay's circuit closes. Writes
    land on the home supplier and cold reads come back through the direct
    connection while the relay holds nothing of the owner's but its own
    supplier session: only the home's reservation reaches it from the
    home's router."""
    if isolated(request):
        return
    w = homes
    relay, h, name, rid = relayed_home(w, "198.18.7.8", "preserve", "h6")
    mt = home_owner(w, "198.18.7.9")
    try:
        mt.init()
        mt.mount([], ec="3+2", extra=["--bootstrap", f"{BOOT}:{PORT}"])
        wait_for(lambda: reach_in_status(mt, name).get("reach") ==
                 "direct (punched)", 40, "the session punched direct")
        assert "direct (punched) after" in mt.log_text(), mt.log_tail()
        rlog = relay["home"] / "supplier.log"
        wait_for(lambda: "circuit from 198.18.7.9 closed" in
                 rlog.read_text(), 30, "the relay's circuit closed")
        files = write_tree(mt.path, 21)
        mt.sync()
        assert reach_in_status(mt, name)["fragments"] > 0, \
            mt.status_json()["suppliers"]
        # The home's reservation, and no circuit beside it.
        assert len(relay_conns_from(relay, "198.18.7.8")) == 1, \
            relay_conns_from(relay, "198.18.7.8")
        mt.umount()
        # Two public suppliers gone: every block needs the home's
        # fragments, read through the direct connection once punched.
        for gone in ("s1", "s2"):
            supplier_stop(w["sup"][gone]["pid"])
        mt.mount([], ec="3+2")
        wait_for(lambda: reach_in_status(mt, name).get("reach") ==
                 "direct (punched)", 40, "punched again after remount")
        mt.drop_cache()
        assert read_tree(mt.path) == files
        assert reach_in_status(mt, name)["state"] == "online"
        wait_for(lambda: len(relay_conns_from(relay, "198.18.7.8")) == 1,
                 30, "no circuit left on the relay")
        text = run_peerfs(["status", mt.path], check=True).stdout
        assert any(name in line and "direct (punched)" in line
                   for line in text.splitlines()), text
        mt.umount()
    finally:
        mt.cleanup()


def test_random_port_router_stays_relayed(request, homes):
    """The supplier's router randomises ports: the punch tries fail,
    the owner says so once and stays relayed; reads work through the
    relay."""
    if isolated(request):
        return
    w = homes
    relay, h, name, rid = relayed_home(w, "198.18.7.7", "random", "h7")
    mt = home_owner(w, "198.18.7.9")
    try:
        mt.init()
        mt.mount([], ec="3+2", extra=["--bootstrap", f"{BOOT}:{PORT}"])
        files = write_tree(mt.path, 22)
        mt.sync()
        wait_for(lambda: "no direct connection" in mt.log_text(), 45,
                 "the punch tries given up")
        log = mt.log_text()
        assert log.count("no direct connection") == 1, mt.log_tail()
        assert "direct (punched)" not in log, mt.log_tail()
        got = reach_in_status(mt, name)
        assert got["reach"] == f"relay via {rid[:16]}", got
        assert got["fragments"] > 0, got
        mt.umount()
        for gone in ("s1", "s2"):
            supplier_stop(w["sup"][gone]["pid"])
        mt.mount([], ec="3+2")
        mt.drop_cache()
        assert read_tree(mt.path) == files
        assert reach_in_status(mt, name)["state"] == "online"
        assert "direct (punched)" not in mt.log_text(), mt.log_tail()
        mt.umount()
    finally:
        mt.cleanup()


def test_punch_from_a_stranger_refused(make_swarm):
    """PUNCH on a session that does not come through a relay is refused
    (EOPNOTSUPP: nowhere to dial), and one of another version is
    malformed: that session closes, the supplier serves on."""
    from test_strangers import attack
    sw = make_swarm(1)
    rc, out = attack("punch", sw.address(0), "--wait", "20", timeout=60)
    assert rc == 0, out
    assert f"refused {errno.EOPNOTSUPP}" in out, out
    assert "closed" in out, out
    assert sw.alive(0)
    rc, out = attack("idle", sw.address(0), "-n", "1", "--hold", "0",
                     timeout=60)
    assert "up 1 of 1" in out, out
