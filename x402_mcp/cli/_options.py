"""Argument types for command-line flags that take an address or a service URL.

They apply the same rules as `Payments(...)` and the `X402_*` variables
(`x402_mcp.core.addresses`, `x402_mcp.core.links.service_url`), so a flag never accepts
what the configuration would refuse. Imports are lazy: parsing `--help` stays quick.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def address_option(flag: str) -> Callable[[str], str]:
    """An argparse `type` reading `flag`'s value as an EVM address, checksummed (see `parse_address`)."""

    def parse(value: str) -> str:
        from ..core.addresses import parse_address
        from ..errors import ConfigurationError

        try:
            return parse_address(value, what=flag)
        except ConfigurationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def url_option(flag: str) -> Callable[[str], str]:
    """An argparse `type` reading `flag`'s value as an http(s) service URL, never echoed back."""

    def parse(value: str) -> str:
        from ..core.links import service_url
        from ..errors import ConfigurationError

        try:
            return service_url(value, what=flag)
        except ConfigurationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def address_list_option(flag: str) -> Callable[[str], str]:
    """Like `address_option`, for a flag that also takes comma-separated addresses (kept joined)."""
    one = address_option(flag)

    def parse(value: str) -> str:
        return ",".join(one(item) for item in value.split(",") if item.strip())

    return parse
