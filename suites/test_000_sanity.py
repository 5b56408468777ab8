"""Sanity before the suites: the target answers Identify (DSP0226 11; MS-WSMV 3.1.4.16).

The plugin runs this module first for every target (harness.report.session.sanity_rank), so a
report always shows whether the target was reachable before anything else was checked.
"""

from __future__ import annotations

import pytest

from harness.wire.wsman.ns import NS_WSMAN

pytestmark = [pytest.mark.requires("wsman", "identify")]


@pytest.mark.spec("MS-WSMV 3.1.4.16", "DSP0226 11")
async def test_target_answers_identify_before_the_suites(wsman, wm_outcome):
    info = await wsman.identify()
    assert info.protocol_version == NS_WSMAN, "IdentifyResponse must name the DSP0226 protocol version"
    wm_outcome(f"{info.product_vendor} {info.product_version}", "product identified before the run")
