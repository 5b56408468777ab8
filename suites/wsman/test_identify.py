"""WS-Management Identify (DSP0226 11; MS-WSMV 3.1.4.16)."""

from __future__ import annotations

import pytest

from harness.wire.wsman.ns import NS_WSMAN

pytestmark = [pytest.mark.requires("wsman", "identify")]


@pytest.mark.spec("MS-WSMV 3.1.4.16", "MS-WMOD 2.6.2")
async def test_identify_names_the_protocol_version(wsman):
    info = await wsman.identify()
    assert info.protocol_version == NS_WSMAN, "ProtocolVersion must be the DSP0226 1.x namespace"
    assert info.product_vendor, "ProductVendor must not be empty"
    assert info.product_version, "ProductVersion must not be empty"


@pytest.mark.spec("MS-WSMV 3.1.4.16")
async def test_unauthenticated_identify_is_answered(wsman):
    """A WSMANIDENTIFY: unauthenticated request is answered without credentials (MS-WSMV 3.1.4.16)."""
    info = await wsman.identify(authenticated=False)
    assert info.protocol_version == NS_WSMAN
