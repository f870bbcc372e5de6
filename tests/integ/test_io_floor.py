"""build/io_floor, make bench's account of the least kernel work that
writing through peerfs needs (tests/tools/io_floor.c): the journal's copy
in and out, sending and receiving over loopback, and storing durably two
ways, each step timed alone with no daemon. make bench adds these to the
crypto floor to print the floors under the CPU targets."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, floor_figures, run_floor_tool

TOOL = os.environ.get("PEERFS_IO_FLOOR", ROOT / "build" / "io_floor")
OWNER = ["io_journal_write_s_per_GB", "io_journal_read_s_per_GB",
         "io_send_s_per_GB"]
ORDER = OWNER + ["owner_io_s_per_GB", "io_recv_s_per_GB",
                 "io_store_file_s_per_GB", "io_store_packed_s_per_GB",
                 "supplier_io_s_per_GB"]


@pytest.fixture
def disk_dir():
    """A directory on a disk, not tmpfs: the packed store's O_DIRECT is
    refused by tmpfs before Linux 6.6, and /tmp may be one."""
    d = tempfile.mkdtemp(prefix="peerfs-io-floor-", dir="/var/tmp")
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run(*args):
    return run_floor_tool(TOOL, *args)


@pytest.mark.parametrize("ec", [("4", "2"), ("3", "1")])
def test_every_step_measured_summed_and_cleaned_up(disk_dir, ec):
    figs = floor_figures(TOOL, disk_dir, 16, *ec)
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
    assert os.listdir(disk_dir) == []


def test_a_missing_directory_is_an_error_not_a_figure(tmp_path):
    cp = _run(tmp_path / "nowhere")
    assert cp.returncode == 1
    assert cp.stdout == ""
    assert "nowhere" in cp.stderr and "No such file" in cp.stderr
    (tmp_path / "file").write_text("x")
    cp = _run(tmp_path / "file")
    assert cp.returncode == 1 and cp.stdout == ""
    assert "Not a directory" in cp.stderr


def test_usage(tmp_path):
    cp = _run()
    assert cp.returncode == 2 and "usage: io_floor DIR" in cp.stderr
    cp = _run(tmp_path, 0)
    assert cp.returncode == 2
