"""The fair deal's eviction (issue 15): a stranger holding more on our
supplier than its node holds for us plus --credit, as this home's fresh
audits show, is evicted once that has lasted --evict-grace, not before;
it is then refused new space with the reason.

Real processes on 127.0.0.1: three open suppliers, our home H (its mount
audits and writes the ledger; its supplier S keeps the deal), and a
stranger X whose node holds nothing for us."""

import calendar
import re
import time

from conftest import Swarm, fragment_files, run_peerfs, wait_for
from test_accounts import new_owner, write

GRACE = 6       # seconds: short, so the scenario stays well under a minute


def deal_rows(home):
    """`peerfs supplier accounts` of the supplier of home:
    {owner hex: (fragments, used, deal column)}."""
    cp = run_peerfs(["supplier", "--home", home, "accounts"], timeout=60)
    assert cp.returncode == 0, cp.stderr
    rows = {}
    for line in cp.stdout.splitlines()[1:]:
        f = line.split()
        if len(f) >= 9 and re.fullmatch(r"[0-9a-f]{64}", f[0]):
            rows[f[0]] = (int(f[2]), int(f[4]), f[8])
    return rows


def unix(stamp):
    """"deficit:2026-12-03T14:25:24Z" -> unix seconds."""
    return calendar.timegm(time.strptime(stamp.split(":", 1)[1],
                                         "%Y-%m-%dT%H:%M:%SZ"))


def test_stranger_beyond_the_deal_evicted_after_the_grace(tmp_path,
                                                          make_swarm,
                                                          make_mount):
    opens = make_swarm(3, extra=["--accept", "open"])
    h, _ = new_owner(make_mount, "h")
    s = Swarm(tmp_path / "deal", 1, extra=["--credit", "2M",
                                           "--evict-grace", f"{GRACE}s"])
    s.homes[0] = h.home         # S is the supplier of H's home
    try:
        s.start(0)
        # X stores within the credit: no deficit.
        x, xpk = new_owner(make_mount, "x")
        x.mount([opens.address(0), opens.address(1), s.address(0)],
                ec="2+1", block_size="64K")
        write(x.path / "a", 1 << 20, seed=7)
        x.sync()
        held = deal_rows(h.home)[xpk]
        assert held[0] > 0 and held[2] == "-", held
        x.umount()      # X comes back after the eviction

        # The credit shrinks (S restarted): X is beyond the deal. With
        # no ledger (H has never mounted) nothing may start.
        s.stop(0)
        s.extra = ["--credit", "4K", "--evict-grace", f"{GRACE}s"]
        s.start(0)
        assert deal_rows(h.home)[xpk][2] == "-"

        # H mounts: its audits write a fresh ledger; X's node holds
        # nothing for us, so the deficit clock starts ...
        h.mount(opens.peers, ec="2+1", block_size="64K",
                extra=["--audit-interval", "2s"])
        write(h.path / "mine", 256 << 10, seed=8)
        h.sync()
        row = wait_for(lambda: (lambda r: r if r[2].startswith("deficit:")
                                else None)(deal_rows(h.home)[xpk]),
                       30, "the deficit clock starts for X")
        # ... with X's data still there (the same snapshot).
        assert row[0] > 0 and row[1] > 4096, row
        since = unix(row[2])
        assert "beyond the fair deal" in s.log_text(0)

        # After the grace: evicted, its charge given back.
        def evicted():
            r = deal_rows(h.home).get(xpk)
            return r if r and r[2].startswith("evicted:") else None
        row = wait_for(evicted, 40, "X evicted after the grace")
        assert row[0] == 0 and row[1] == 0, row
        # Not before the grace (the supplier's own records).
        assert unix(row[2]) - since >= GRACE, (since, row)
        assert not [f for f in fragment_files(s.stores[0])
                    if f.parent.parent.name == xpk]
        assert not (s.stores[0] / "evict" / xpk).exists()
        log = s.log_text(0)
        assert f"evicted {xpk} by the fair deal" in log, log[-2000:]

        # X comes back (a fourth supplier now): S refuses it, with the
        # reason; its audits find its fragments gone from S and rebuild
        # them elsewhere.
        x.mount(opens.peers + [s.address(0)], ec="2+1", block_size="64K")

        def refusal():
            for p in x.status_json()["suppliers"]:
                if p["address"] == s.address(0) and p["refusal"]:
                    return p["refusal"]
            return None
        why = wait_for(refusal, 30, "S refuses X")
        assert why.startswith("evicted by the fair deal"), why
        cp = run_peerfs(["check", x.path], timeout=120)
        out = cp.stdout + cp.stderr
        line = [ln for ln in out.splitlines()
                if s.address(0) in ln and "missing" in ln]
        got = re.search(r"(\d+) bad, (\d+) missing", line[0] if line else "")
        assert got and int(got[2]) > 0, out
        assert cp.returncode == 0 and "result: full redundancy" in out, out
        x.drop_cache()
        assert len((x.path / "a").read_bytes()) == 1 << 20
        # H's own data never left: it reads back.
        h.drop_cache()
        assert len((h.path / "mine").read_bytes()) == 256 << 10
    finally:
        s.close()
