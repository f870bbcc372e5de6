"""build/io_floor, make bench's account of the least kernel work that
writing through peerfs needs (tests/tools/io_floor.c): the journal's copy
in and out, sending and receiving over loopback, and storing durably two
ways, each step timed alone with no daemon. make bench adds these to the
crypto floor to print the floors under the CPU targets."""

import os
import subprocess

import pytest

from conftest import ROOT, floor_figures

TOOL = os.environ.get("PEERFS_IO_FLOOR", ROOT / "build" / "io_floor")
OWNER = ["io_journal_write_s_per_GB", "io_journal_read_s_per_GB",
         "io_send_s_per_GB"]
ORDER = OWNER + ["owner_io_s_per_GB", "io_recv_s_per_GB",
                 "io_store_file_s_per_GB", "io_store_packed_s_per_GB",
                 "supplier_io_s_per_GB"]


def _run(*args):
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} is missing (make build/io_floor)",
                    pytrace=False)
    return subprocess.run([str(TOOL), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("ec", [("4", "2"), ("3", "1")])
def test_every_step_measured_summed_and_cleaned_up(tmp_path, ec):
    figs = floor_figures(TOOL, tmp_path, 16, *ec)
    assert list(figs) == ORDER
    for name, v in figs.items():
        assert v > 0, f"{name} measured nothing"
    # Sums of the unrounded steps: within the rounding of three and two.
    assert abs(figs["owner_io_s_per_GB"] -
               sum(figs[s] for s in OWNER)) <= 0.02
    assert abs(figs["supplier_io_s_per_GB"] - figs["io_recv_s_per_GB"] -
               figs["io_store_packed_s_per_GB"]) <= 0.015
    # Everything it wrote (journal, 256 directories of fragments, the
    # pack) is gone again.
    assert os.listdir(tmp_path) == []


def test_a_missing_directory_is_an_error_not_a_figure(tmp_path):
    cp = _run(tmp_path / "nowhere")
    assert cp.returncode == 1
    assert cp.stdout == ""
    assert "nowhere" in cp.stderr and "No such file" in cp.stderr


def test_usage(tmp_path):
    cp = _run()
    assert cp.returncode == 2 and "usage: io_floor DIR" in cp.stderr
    cp = _run(tmp_path, 0)
    assert cp.returncode == 2
