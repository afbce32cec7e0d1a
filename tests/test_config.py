"""Settings from the environment: numbers read with the wire grammar, errors named."""

from __future__ import annotations

import pytest

from x402_mcp.config import settings_from_env
from x402_mcp.errors import ConfigurationError


@pytest.mark.parametrize("port", ["²", "８０８０", "-1", "65536", "80.0", "http"])
def test_a_page_port_that_is_not_a_port_number_is_named(port: str) -> None:
    with pytest.raises(ConfigurationError, match=r"X402_PAGE_PORT=.* is not a port number"):
        settings_from_env({"X402_SETTLEMENT": "cloud", "X402_PAGE_PORT": port})
