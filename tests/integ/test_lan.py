"""A network on one private LAN (`--lan`): every node behind one home
router on 192.168.N.0/24, the DHT's bootstrap node among them, nobody on
the internet. Without --lan a supplier on a private address announces
nothing until a port mapping works, and a mount hires one supplier per
/24 (one per LAN); with it the suppliers announce their LAN addresses, a
dial-back by a neighbour confirms them (`direct`), and the mount hires
and places on all of them. Every test re-runs itself under `unshare -n`
(netns.isolated)."""

import hashlib
import os

import pytest

from conftest import run_peerfs, wait_for
from netns import CHILD_ENV, isolated
from test_home_routers import reach_of
from test_network import (PORT, hired, net_world, read_tree, record_stored,
                          supplier_start, write_tree)


@pytest.fixture
def lan(tmp_path, need_fuse):
    """One home router's LAN: five supplier machines (the first starts
    the DHT; none started yet) and the owner's. Torn down whatever
    happens."""
    if os.environ.get(CHILD_ENV) != "1":
        yield None
        return

    def build(w):
        r = w["net"].router("home", "198.18.0.1")
        w["owner"] = r.machine("owner")
        w["machines"] = [r.machine(f"s{i}") for i in range(5)]
        w["boot"] = f"{w['machines'][0].addr}:{PORT}"
    yield from net_world(tmp_path, build)


def start_all(w, lan_flag):
    """A supplier on each machine, as the README says (--dht on the
    first, --bootstrap to it on the others), each with --lan or not;
    returns once each has stored its record in the DHT."""
    for i, m in enumerate(w["machines"]):
        home, store = w["tmp"] / f"s{i}-home", w["tmp"] / f"s{i}-store"
        extra = ["--dht"] if i == 0 else ["--bootstrap", w["boot"]]
        extra += ["--lan"] if lan_flag else []
        w["sup"][m.addr] = {"m": m, "home": home, "pid": supplier_start(
            w["net"], m, home, store, extra, wait=False)}
    for s in w["sup"].values():
        record_stored(s["m"], s["home"])


def test_lan_network_hires_and_stores_on_every_machine(request, lan):
    """With --lan on every node: each supplier says `direct` at its LAN
    address; the mount hires k+m+2 suppliers, all on the one /24, writes
    a tree with every fragment of a block on another machine, reads it
    back cold, and a remount given nothing (the bootstrap and --lan
    remembered) still places new blocks on all of them."""
    if isolated(request):
        return
    w = lan
    start_all(w, True)
    for addr, s in w["sup"].items():
        wait_for(lambda: reach_of(s["home"]) == f"direct {addr}:{PORT}", 90,
                 f"{addr} confirmed direct by a neighbour")
    mt = w["mount"]().init()
    mt.mount([], ec="2+1", extra=["--bootstrap", w["boot"], "--lan"])
    h = hired(mt.home)
    assert len(h) == 5, (h, mt.log_tail())
    assert {a for _, a in h} == {f"{a}:{PORT}" for a in w["sup"]}
    files = write_tree(mt.path, 3)
    mt.sync()
    st = mt.status_json()
    assert st["blocks"]["full"] == st["blocks"]["total"] > 0, st["blocks"]
    holding = [p for p in st["suppliers"] if p["fragments"] > 0]
    assert len(holding) >= 3, st["suppliers"]
    mt.drop_cache()
    assert read_tree(mt.path) == files

    mt.umount()
    mt.mount([], ec="2+1")
    more = os.urandom(3 << 20)
    (mt.path / "more").write_bytes(more)
    mt.sync()
    st = mt.status_json()
    assert st["blocks"]["full"] == st["blocks"]["total"], st["blocks"]
    mt.drop_cache()
    files["more"] = hashlib.sha256(more).hexdigest()
    assert read_tree(mt.path) == files


def test_mount_without_lan_hires_one_per_lan(request, lan):
    """The suppliers run with --lan, the mount without: they share one
    /24, so it hires one of them and says how few are online; the rule
    that --lan lifts is the owner's own."""
    if isolated(request):
        return
    w = lan
    start_all(w, True)
    mt = w["mount"]().init()
    mt.mount([], ec="2+1", extra=["--bootstrap", w["boot"]])
    h = hired(mt.home)
    assert len(h) == 1, (h, mt.log_tail())
    assert "1 of 1 suppliers online (2+1 needs 3)" in mt.log_text(), \
        mt.log_tail()


def test_peers_on_a_lan_need_lan_and_say_so(request, lan):
    """Suppliers of the LAN given with --peer, no --lan: they share a
    /24, so a block's fragments cannot all be placed; the upload says
    why and what to do. Remounted with --lan, the same blocks go out."""
    if isolated(request):
        return
    w = lan
    start_all(w, True)
    peers = [f"{a}:{PORT}" for a in list(w["sup"])[:3]]
    mt = w["mount"]().init()
    mt.mount(peers, ec="2+1")
    data = os.urandom(1 << 20)
    (mt.path / "f").write_bytes(data)
    wait_for(lambda: "a network of one LAN needs --lan" in mt.log_text(),
             60, "the upload's hint at --lan")
    assert mt.status_json()["blocks"]["pending"] >= 1
    # The journal keeps the block: the next mount uploads it.
    assert run_peerfs(["umount", "--force", mt.path]).returncode == 0
    mt.mount(peers, ec="2+1", extra=["--lan"])
    mt.sync()
    st = mt.status_json()
    assert st["blocks"]["full"] == st["blocks"]["total"] > 0, st["blocks"]
    mt.drop_cache()
    assert (mt.path / "f").read_bytes() == data
