"""`peerfs sim`: the durability simulator from the command line.

The simulation's properties are checked in tests/unit/test_sim.c (model
agreement, exact losses, nothing lost when nothing fails); here the
command: a small grid from a --config file runs to a table, prints its
seed, gives the same table for the same seed and another for another, and
a bad file is refused with the line it is on."""

import re

from conftest import run_peerfs

SMALL = """# two scenarios, a small world
ec = 4+2, 6+3
avail = 50%
dead = 6h
suppliers = 500
owners = 10
blocks = 8
years = 0.05
"""


def _sim(tmp_path, text, *args):
    conf = tmp_path / "sim.ini"
    conf.write_text(text)
    return run_peerfs(["sim", "--config", str(conf), "--jobs", "2", *args],
                      timeout=120)


def _rows(out):
    return [l for l in out.splitlines() if re.match(r"^\| \d+\+\d+ ", l)]


def test_sim_table_reproducible(peerfs_bin, tmp_path):
    a = _sim(tmp_path, SMALL, "--seed", "5", "--out", str(tmp_path))
    assert a.returncode == 0, a.stderr
    assert a.stdout.startswith("seed 5: 500 suppliers, 10 owners"), a.stdout
    rows = _rows(a.stdout)
    assert [r.split("|")[1].strip() for r in rows] == ["4+2", "6+3"], a.stdout
    assert re.search(r"^sim_peer_years_per_s \d+", a.stdout, re.M), a.stdout
    tsv = (tmp_path / "durability.tsv").read_text().splitlines()
    assert len(tsv) == 3 and tsv[1].startswith("4\t2\t50\t21600\t"), tsv
    b = _sim(tmp_path, SMALL, "--seed", "5")
    assert b.returncode == 0, b.stderr
    assert _rows(b.stdout) == rows
    c = _sim(tmp_path, SMALL, "--seed", "6")
    assert c.returncode == 0, c.stderr
    # The figures differ, not only the seed column.
    figures = lambda rs: [r.rsplit("|", 2)[0] for r in rs]
    assert figures(_rows(c.stdout)) != figures(rows)


def test_sim_bad_config(peerfs_bin, tmp_path):
    cp = _sim(tmp_path, "ec = 4+2\nfrobnicate = 3\n")
    assert cp.returncode == 1
    assert "line 2: frobnicate: unknown key" in cp.stderr, cp.stderr
    cp = _sim(tmp_path, "avail = 0%\n")
    assert cp.returncode == 1 and "bad scenario" in cp.stderr, cp.stderr
    cp = run_peerfs(["sim", "--config", str(tmp_path / "none.ini")],
                    timeout=20)
    assert cp.returncode == 1 and "No such file" in cp.stderr, cp.stderr
