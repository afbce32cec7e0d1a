"""Which scheme takes a payment: a payload's `accepted.scheme` and network pick one.

The flow and the gate ask the registry and never name a scheme, so a new scheme is
one more object given to `SchemeRegistry`, nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..core.networks import resolve_network
from ..core.text import shown
from ..core.wire import PaymentRequirements
from ..errors import ConfigurationError, Refusal
from .protocol import Quote, Scheme

__all__ = ["NETWORK_MISMATCH", "UNSUPPORTED_SCHEME", "SchemeRegistry", "scheme_and_network"]

UNSUPPORTED_SCHEME = "unsupported_scheme"
NETWORK_MISMATCH = "network_mismatch"


def scheme_and_network(raw: Mapping[str, Any]) -> tuple[str, str] | Refusal:
    """The scheme and CAIP-2 network a decoded `x402/payment` object says it pays with.

    x402 v2 names them in `accepted`; v1 at the top, with a network name
    (`base-sepolia`) that is read as its CAIP-2 id when it is one we know.
    """
    accepted = raw.get("accepted")
    where = accepted if isinstance(accepted, Mapping) else raw
    scheme, network = where.get("scheme"), where.get("network")
    if not isinstance(scheme, str) or not isinstance(network, str):
        fields = "accepted.scheme and accepted.network" if accepted is not None else "scheme and network"
        return Refusal("invalid_payload", f"The payment does not name its {fields} as strings.")
    if accepted is None and ":" not in network:
        # An unknown name is left as written: no scheme is registered under it, and the refusal names it.
        with contextlib.suppress(ConfigurationError):
            network = resolve_network(network).caip2
    return scheme, network


class SchemeRegistry:
    """The schemes a server accepts, one per (scheme name, network), in offering order.

    Raises:
        ConfigurationError: two schemes registered for the same name and network.
    """

    def __init__(self, schemes: Iterable[Scheme[Any]] = ()) -> None:
        self._schemes: dict[tuple[str, str], Scheme[Any]] = {}
        for scheme in schemes:
            self.register(scheme)

    def register(self, scheme: Scheme[Any]) -> None:
        """Accept payments in `scheme` too, offered after those registered before it."""
        key = (scheme.scheme, scheme.caip2)
        if key in self._schemes:
            raise ConfigurationError(
                f"two payment schemes are registered for {scheme.scheme!r} on {scheme.caip2}: "
                f"{self._schemes[key]!r} and {scheme!r}; keep one"
            )
        self._schemes[key] = scheme

    def __iter__(self) -> Iterator[Scheme[Any]]:
        return iter(self._schemes.values())

    def __len__(self) -> int:
        return len(self._schemes)

    def lookup(self, name: str, network: str) -> Scheme[Any] | Refusal:
        """The scheme for payments in `name` on `network`, or a refusal that says what is accepted."""
        found = self._schemes.get((name, network))
        if found is not None:
            return found
        offered = "; ".join(f"{known} on {where}" for known, where in self._schemes) or "nothing"
        if any(known == name for known, _ in self._schemes):
            return Refusal(
                NETWORK_MISMATCH,
                f"Payments in {shown(repr(name))} on {shown(network)} are not accepted here; "
                f"this server accepts: {offered}.",
            )
        return Refusal(
            UNSUPPORTED_SCHEME,
            f"The payment uses the {shown(repr(name))} scheme, which this server does not accept; "
            f"it accepts: {offered}.",
        )

    def for_payload(self, raw: Mapping[str, Any]) -> Scheme[Any] | Refusal:
        """The scheme a decoded `x402/payment` object is for (see `scheme_and_network`)."""
        named = scheme_and_network(raw)
        return named if isinstance(named, Refusal) else self.lookup(*named)

    async def accepts(self, quote: Quote) -> list[PaymentRequirements]:
        """Every way to pay `quote`: each scheme's entries, in registration order."""
        offered: list[PaymentRequirements] = []
        for scheme in self._schemes.values():
            offered.extend(await scheme.accepts(quote))
        return offered
