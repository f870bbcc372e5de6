"""build/crypto_floor, make bench's account of the CPU that the block
format and the wire require (tests/tools/crypto_floor.c): it runs a block
through the project's own sealing, erasure code, tags, audit answers and
session MAC and back (any check that fails makes it exit 1, not print a
figure), and prints each step and their sums, one figure per line."""

import os

import pytest

from conftest import ROOT, floor_figures

TOOL = os.environ.get("PEERFS_CRYPTO_FLOOR", ROOT / "build" / "crypto_floor")
STEPS = ["crypto_block_key_s_per_GB", "crypto_seal_s_per_GB",
         "crypto_ec_encode_s_per_GB", "crypto_frag_tags_s_per_GB",
         "crypto_audit_answers_s_per_GB", "crypto_session_mac_s_per_GB"]


@pytest.mark.parametrize("ec", [("4", "2"), ("3", "1")])
def test_every_step_measured_and_summed(ec):
    figs = floor_figures(TOOL, "8", *ec)
    assert list(figs) == STEPS + ["owner_crypto_s_per_GB",
                                  "supplier_crypto_s_per_GB",
                                  "read_crypto_s_per_GB"]
    for name, v in figs.items():
        assert v > 0, f"{name} measured nothing"
    # The sum is of the unrounded steps: within the rounding of six.
    assert abs(figs["owner_crypto_s_per_GB"] -
               sum(figs[s] for s in STEPS)) <= 0.03
