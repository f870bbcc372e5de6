"""Restore through the network (issue 15, scenario 7), on simulated
machines (netns.py): the owner's machine is gone for good, and a fresh
machine with nothing but the recovery code and the address of one node of
the network, a node that holds nothing of ours, gets everything back. The
suppliers holding the owner's heads are found in the DHT under the owner's
locator (a key only the recovery code computes), where they, not the
owner, keep their records alive."""

import os
import re
import shutil

import pytest

from conftest import PEERFS, clean_env, run_peerfs
from netns import CHILD_ENV, Internet, isolated
from test_network import (PORT, NetMount, hired, read_tree, record_stored,
                          supplier_start, write_tree)

BOOT = "198.18.0.10"


@pytest.fixture
def swarm(tmp_path, need_fuse):
    """The internet and a bootstrap node that is a supplier too, four more
    suppliers on /24s of their own. Torn down whatever happens. Built only
    in the isolated child."""
    if os.environ.get(CHILD_ENV) != "1":
        yield None
        return
    net = Internet()
    made = []
    w = {"net": net, "sup": {}, "tmp": tmp_path}

    def machine_mount(machine, name):
        made.append(NetMount(tmp_path, machine, name))
        return made[-1]

    def add_supplier(name, addr, extra):
        m = net.machine(name, addr)
        home, store = tmp_path / f"{name}-home", tmp_path / f"{name}-store"
        w["sup"][name] = {"m": m, "home": home, "store": store,
                          "pid": supplier_start(net, m, home, store, extra,
                                                wait=False)}
        return w["sup"][name]

    try:
        add_supplier("boot", BOOT, ["--dht"])
        for i in range(1, 5):
            add_supplier(f"s{i}", f"198.18.{i}.2",
                         ["--bootstrap", f"{BOOT}:{PORT}"])
        for s in w["sup"].values():
            record_stored(s["m"], s["home"])
        w["add_supplier"] = add_supplier
        w["mount"] = machine_mount
        yield w
    finally:
        for mt in made:
            mt.cleanup()
        net.close()


def test_restore_from_code_and_any_node(request, swarm):
    """Scenario 7: a mount that only had --bootstrap writes a tree and
    goes away with its machine; a node that joins the network later (so
    it holds nothing of ours) is the only address a fresh machine is
    given. `peerfs restore --code-file F --bootstrap IT` finds the
    suppliers holding the heads in the DHT, and the restored home mounts
    with nothing else given: every file compares equal from the
    suppliers."""
    if isolated(request):
        return
    w = swarm
    owner = w["net"].machine("owner", "198.18.100.2")
    mt = w["mount"](owner, "orig").init()
    mt.mount([], ec="2+1", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    files = write_tree(mt.path, 7)
    mt.sync()
    ours = {a for _, a in hired(mt.home)}
    assert len(ours) >= 3, mt.log_tail()
    cp = run_peerfs(["key", "export", "--home", mt.home])
    assert cp.returncode == 0, cp.stderr
    code = w["tmp"] / "code.txt"
    code.write_text(cp.stdout)
    mt.umount()
    # Each supplier holding our heads announces itself under our locator.
    for s in w["sup"].values():
        if f"{s['m'].addr}:{PORT}" in ours:
            assert (list(s["store"].glob("*/heads/locator"))), s["m"].name
    # The owner's machine is gone for good.
    mt.cleanup()
    owner.cut()
    shutil.rmtree(mt.home)

    late = w["add_supplier"]("late", "198.18.50.2",
                             ["--bootstrap", f"{BOOT}:{PORT}"])
    record_stored(late["m"], late["home"])
    late_addr = f"{late['m'].addr}:{PORT}"
    assert late_addr not in ours

    fresh = w["net"].machine("fresh", "198.18.60.2")
    r = w["mount"](fresh, "restored")
    cp = fresh.run([PEERFS, "restore", "--home", r.home, "--code-file", code,
                    "--bootstrap", late_addr, "--no-passphrase"],
                   env=clean_env(), timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"restored version \d+", cp.stdout), cp.stdout
    # Remembered for the mount: the bootstrap and the suppliers, by id.
    assert (r.home / "bootstrap").read_text().split() == [late_addr]
    assert {a for _, a in hired(r.home)} >= ours - {late_addr}
    r.mount([])
    r.drop_cache()
    assert read_tree(r.path) == files
    r.umount()


def test_restore_bootstrap_refusals(tmp_path, peerfs_bin):
    """restore needs --peer or --bootstrap (bad usage, status 2); a
    bootstrap with nothing behind it is a clear failure that leaves no
    home behind."""
    home = tmp_path / "h"
    run_peerfs(["init", "--home", home, "--no-passphrase"], check=True)
    cp = run_peerfs(["key", "export", "--home", home], check=True)
    code = tmp_path / "code.txt"
    code.write_text(cp.stdout)
    cp = run_peerfs(["restore", "--home", tmp_path / "r", "--code-file", code,
                     "--no-passphrase"])
    assert cp.returncode == 2 and "--bootstrap" in cp.stderr, cp.stderr
    cp = run_peerfs(["restore", "--home", tmp_path / "r", "--code-file", code,
                     "--no-passphrase", "--bootstrap", "127.0.0.1:9"],
                    timeout=120)
    assert cp.returncode == 1, cp.stderr
    assert "no supplier holding this owner's index" in cp.stderr, cp.stderr
    assert not (tmp_path / "r").exists()
