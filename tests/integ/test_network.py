"""peerfs as a network (issue 15), on simulated machines (netns.py): each
supplier and the owner on a machine of its own, on distinct /24s of
198.18.0.0/15, joined through a DHT. Every test re-runs itself under
`unshare -n` (netns.isolated), so nothing can leave the real machine.

Scenario 3's other half (a replayed older record is refused) is a unit
test: tests/unit/test_record.c (replay_refused) and test_dht.c (through a
real DHT)."""

import hashlib
import os
import random
import signal

import pytest

from conftest import (PEERFS, Mount, _wait_pid_gone, clean_env, run_peerfs,
                      wait_for)
from netns import CHILD_ENV, Internet, isolated

PORT = 7070
BOOT = "198.18.0.10"


def record_stored(m, home):
    """Waits until the supplier's log (since its last start) says a put of
    its record succeeded: a lone first node has nowhere to store it. A
    failed put is retried every 2 s; the bound is generous for a loaded
    machine. "Since its last start" is after the DHT's start line, which
    comes before any put: a put completes in a few ms, so "stored" can be
    logged before the TCP listener's "listening on" (splitting there
    missed it now and then, and the wait ran out after 90 s)."""
    log = home / "supplier.log"
    wait_for(lambda: "dht: our record is stored" in
             log.read_text().split("dht: node on udp")[-1], 90,
             f"{m.name}'s record stored in the DHT")


def supplier_start(net, m, home, store, extra=(), wait=True):
    """`peerfs supplier --daemon` on machine m; returns its pid (once its
    record is stored in the DHT, with wait)."""
    cp = m.run([PEERFS, "supplier", "--home", home, "--listen",
                f"{m.addr}:{PORT}", "--store", store, "--quota", "1G",
                "--daemon"] + list(extra), env=clean_env())
    if cp.returncode != 0:
        pytest.fail(f"supplier on {m.name} exited {cp.returncode}: "
                    f"{cp.stderr[-2000:]}", pytrace=False)
    pid = int((home / "supplier.pid").read_text().split()[0])
    net.track_pid(pid)
    if wait:
        record_stored(m, home)
    return pid


def supplier_stop(pid):
    os.kill(pid, signal.SIGTERM)
    assert _wait_pid_gone(pid, 20), f"supplier {pid} did not stop"


class NetMount(Mount):
    """A Mount whose daemon lives on a simulated machine (nsenter --net:
    the mount itself stays visible here)."""

    def __init__(self, base, machine, name="m"):
        super().__init__(base, name)
        self.machine = machine

    def try_mount(self, peers, env=None, timeout=120, **kw):
        self.last_mount_args = (list(peers), dict(kw))
        return self.machine.run([PEERFS] + [str(a) for a in
                                            self.mount_args(peers, **kw)],
                                env=clean_env(env), timeout=timeout)


def write_tree(root, seed):
    rnd = random.Random(seed)
    files = {}
    (root / "docs").mkdir()
    (root / "docs" / "deep").mkdir()
    for i, size in enumerate([0, 1, 4095, 70000, 3 * 1024 * 1024 + 17]):
        data = rnd.randbytes(size)
        p = root / ("docs" if i % 2 else "docs/deep") / f"f{i}"
        p.write_bytes(data)
        files[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    (root / "note.txt").write_text("hello from a simulated machine\n")
    files["note.txt"] = hashlib.sha256(b"hello from a simulated machine\n").hexdigest()
    return files


def read_tree(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def hired(home):
    """<home>/hired: [(id, address)]"""
    p = home / "hired"
    if not p.exists():
        return []
    return [tuple(line.split()) for line in p.read_text().splitlines() if line]


def block24(addr):
    return ".".join(addr.split(":")[0].split(".")[:3])


def world_supplier(w, name, m, more=(), wait=False):
    """A supplier on machine m in world w (net_world), under name: the
    DHT's bootstrap node when named "boot", else bootstrapped from it."""
    home, store = w["tmp"] / f"{name}-home", w["tmp"] / f"{name}-store"
    extra = ["--dht"] if name == "boot" else ["--bootstrap", f"{BOOT}:{PORT}"]
    s = {"m": m, "home": home, "store": store, "addr": f"{m.addr}:{PORT}",
         "pid": supplier_start(w["net"], m, home, store, extra + list(more),
                               wait=wait)}
    w["sup"][name] = s
    return s


def net_world(tmp_path, build):
    """The frame of the network fixtures: the internet and a world dict
    (net, sup, tmp; then owner, the owner's machine unless build made
    one, and mount(name), a NetMount on it), build(w) starting the
    suppliers. Torn down whatever
    happens: every mount, then every machine and process."""
    net = Internet()
    made = []
    w = {"net": net, "sup": {}, "tmp": tmp_path}
    try:
        build(w)
        if "owner" not in w:        # else build put it somewhere else
            w["owner"] = net.machine("owner", "198.18.100.2")
        w["mount"] = lambda name="m": made.append(
            NetMount(tmp_path, w["owner"], name)) or made[-1]
        yield w
    finally:
        for mt in made:
            mt.cleanup()
        net.close()


@pytest.fixture
def world(tmp_path, need_fuse):
    """The internet, a bootstrap node that is a supplier too, four more
    suppliers on /24s of their own and two that share one /24, and the
    owner's machine. Torn down whatever happens. Built only in the
    isolated child (the parent just re-runs the test there)."""
    if os.environ.get(CHILD_ENV) != "1":
        yield None
        return

    def build(w):
        specs = [("boot", BOOT)] + [(f"s{i}", f"198.18.{i}.2") for i in range(1, 5)] \
            + [("s5", "198.18.5.2"), ("s6", "198.18.5.3")]
        for name, addr in specs:
            world_supplier(w, name, w["net"].machine(name, addr))
        for s in w["sup"].values():
            record_stored(s["m"], s["home"])
    yield from net_world(tmp_path, build)


def test_id_and_bad_bootstrap(tmp_path, peerfs_bin):
    """`peerfs id` prints the id `init` announced; a --bootstrap without a
    port is bad usage (status 2) for mount and supplier alike."""
    home = tmp_path / "h"
    cp = run_peerfs(["init", "--home", home, "--no-passphrase"], check=True)
    cp2 = run_peerfs(["id", "--home", home], check=True)
    ident = cp2.stdout.strip()
    assert len(ident) == 64 and int(ident, 16) >= 0
    assert f"peer id {ident}" in cp.stdout
    assert run_peerfs(["id", "--home", tmp_path / "none"]).returncode != 0
    (tmp_path / "mnt").mkdir()
    for args in (["mount", "--home", home, "--bootstrap", "nocolon", tmp_path / "mnt"],
                 ["supplier", "--home", home, "--listen", "127.0.0.1:1",
                  "--store", tmp_path / "st", "--bootstrap", "nocolon"]):
        cp = run_peerfs(args)
        assert cp.returncode == 2, (args, cp.stderr)
        assert "--bootstrap" in cp.stderr


def test_bootstrap_only_mount_hires_distinct_blocks(request, world):
    """Scenario 1 (first half): a mount given only --bootstrap hires k+m
    (+ spares) suppliers on distinct hosts and /24s, writes and reads
    through them; after a remount with nothing given (all remembered) the
    tree compares equal from a cold cache."""
    if isolated(request):
        return
    w = world
    mt = w["mount"]().init()
    mt.mount([], ec="2+1", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    h = hired(mt.home)
    addrs = [a for _, a in h]
    # 2+1 wants 3 + 2 spares; 7 suppliers on 6 distinct /24s.
    assert len(h) == 5, (h, mt.log_tail())
    assert len({block24(a) for a in addrs}) == 5, addrs
    assert len({i for i, _ in h}) == 5
    assert not ("198.18.5.2:7070" in addrs and "198.18.5.3:7070" in addrs)
    # Each hired id is the key behind its address (the supplier's own id).
    ids = {}
    for name, s in w["sup"].items():
        cp = s["m"].run([PEERFS, "id", "--home", s["home"]], check=True,
                        env=clean_env())
        ids[f"{s['m'].addr}:{PORT}"] = cp.stdout.strip()
    for i, a in h:
        assert ids[a] == i, (a, i, ids[a])

    files = write_tree(mt.path, 1)
    mt.sync()
    st = mt.status_json()
    online = [p for p in st["suppliers"] if p["state"] == "online"]
    assert len(online) == 5, st["suppliers"]
    assert {p["address"] for p in st["suppliers"]} == set(addrs)
    holding = [p for p in st["suppliers"] if p["fragments"] > 0]
    assert len(holding) >= 3, st["suppliers"]
    assert read_tree(mt.path) == files

    # Remount with no --bootstrap and no --peer: both remembered.
    mt.umount()
    mt.mount([], ec="2+1")
    mt.drop_cache()
    assert read_tree(mt.path) == files
    assert sorted(a for _, a in hired(mt.home)) == sorted(addrs)


def test_supplier_restart_needs_no_bootstrap(request, world):
    """A supplier restarted with no --bootstrap rejoins through the one it
    remembered; here it also comes back on a new address: its new record
    (a higher seq than the old one still in the DHT) reaches the owner,
    who goes back to it at the new address and reads everything."""
    if isolated(request):
        return
    w = world
    mt = w["mount"]().init()
    mt.mount([], ec="2+1", extra=["--bootstrap", f"{BOOT}:{PORT}"])
    files = write_tree(mt.path, 2)
    mt.sync()
    h = hired(mt.home)
    # A hired supplier other than the bootstrap node moves.
    name = next(n for n, s in w["sup"].items()
                if n != "boot" and f"{s['m'].addr}:{PORT}" in [a for _, a in h])
    s = w["sup"][name]
    old = f"{s['m'].addr}:{PORT}"
    mt.umount()

    supplier_stop(s["pid"])
    new_ip = "198.18.77.2"
    s["m"].readdress(new_ip)
    s["pid"] = supplier_start(w["net"], s["m"], s["home"], s["store"])
    assert f"dht: bootstrap {BOOT}:{PORT}" in \
        (s["home"] / "supplier.log").read_text().split("listening on")[-2]

    mt.mount([], ec="2+1")
    log = mt.log_text()
    assert f"supplier {old} moved to {new_ip}:{PORT}" in log, mt.log_tail()
    addrs = [a for _, a in hired(mt.home)]
    assert f"{new_ip}:{PORT}" in addrs and old not in addrs
    st = mt.status_json()
    moved = [p for p in st["suppliers"] if p["address"] == f"{new_ip}:{PORT}"]
    assert moved and moved[0]["state"] == "online", st["suppliers"]
    mt.drop_cache()
    assert read_tree(mt.path) == files


def test_dead_machine_rebuilt_on_spares(request, world):
    """Scenario 1 (second half, as far as this foundation goes): a hired
    supplier's machine is unplugged; it turns dead and its fragments are
    rebuilt on the spares hired from the network (each on a /24 of its
    own); the tree reads back equal from a cold cache."""
    if isolated(request):
        return
    w = world
    mt = w["mount"]().init()
    mt.mount([], ec="2+1", block_size="64K",
             extra=["--bootstrap", f"{BOOT}:{PORT}", "--ping-interval", "300ms",
                    "--suspect-after", "1s", "--dead-after", "3s"])
    files = write_tree(mt.path, 3)
    mt.sync()
    st = mt.status_json()
    holders = [p for p in st["suppliers"] if p["placed_fragments"] > 0]
    victim = next(p for p in holders if p["address"] != f"{BOOT}:{PORT}")
    name = next(n for n, s in w["sup"].items()
                if f"{s['m'].addr}:{PORT}" == victim["address"])
    s = w["sup"][name]
    s["m"].cut()
    os.kill(s["pid"], signal.SIGKILL)
    wait_for(lambda: any(p["address"] == victim["address"] and p["state"] == "dead"
                         for p in mt.status_json()["suppliers"]), 30, "supplier dead")

    def rebuilt():
        b = mt.status_json()["blocks"]
        return b["full"] == b["total"] > 0 and not b["degraded_by_missing"]
    wait_for(rebuilt, 45, "blocks rebuilt on the spares")
    st = mt.status_json()
    # Where the block records put fragments now ("fragments" is what a
    # supplier says it holds: one declared dead keeps its old copies until
    # they are deleted; with these short timers a busy supplier may be
    # declared dead too, and a spare of its /24 hired in its place).
    addrs = [p["address"] for p in st["suppliers"] if p["placed_fragments"] > 0]
    assert victim["address"] not in addrs
    assert len({block24(a) for a in addrs}) == len(addrs), \
        (addrs, [ln for ln in mt.log_text().splitlines()
                 if "hired" in ln or "supplier" in ln][-40:])
    mt.drop_cache()
    assert read_tree(mt.path) == files
