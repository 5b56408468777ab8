"""Sanity after the suites: the target still answers Identify (DSP0226 11; MS-WSMV 3.1.4.16).

The plugin runs this module last for every target (harness.report.session.sanity_rank): a
target that crashed or stopped answering during the run fails here, in its own row.
"""

from __future__ import annotations

import pytest

from harness.wire.wsman.ns import NS_WSMAN

pytestmark = [pytest.mark.requires("wsman", "identify")]


@pytest.mark.spec("MS-WSMV 3.1.4.16", "DSP0226 11")
async def test_target_survived_the_suites(wsman, wm_outcome):
    info = await wsman.identify()
    assert info.protocol_version == NS_WSMAN, "the target no longer answers Identify correctly"
    wm_outcome(f"{info.product_vendor} {info.product_version}", "product identified after the run")
