"""The scheme registry: a payload's scheme and network pick one scheme, or a clear refusal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from x402_mcp.core.wire import PaymentRequirements, SettleResponse
from x402_mcp.errors import ConfigurationError, PaymentMismatch, Refusal
from x402_mcp.schemes import (
    Matched,
    OnChain,
    Quote,
    Scheme,
    SchemeRegistry,
    Settleable,
    Settled,
    Valid,
    Verdict,
    scheme_and_network,
)
from x402_mcp.settlement import checks


@dataclass(frozen=True)
class Offered:
    """A quote as the registry sees one (a stored payment request has these fields)."""

    id: str = "req_1"
    price: int = 1500
    network: str = "eip155:84532"
    asset: str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    pay_to: str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    max_timeout_seconds: int = 60


class Token:
    """The smallest scheme there is: it offers one entry per quote and takes payloads naming it.

    Used to pin what the registry does with any scheme; the real ones are tested in
    `test_exact.py`.
    """

    def __init__(self, scheme: str, caip2: str) -> None:
        self.scheme = scheme
        self.caip2 = caip2

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any] | Refusal:
        return dict(raw)

    async def accepts(self, quote: Quote) -> Sequence[PaymentRequirements]:
        return [
            PaymentRequirements(
                scheme=self.scheme,
                network=self.caip2,
                amount=str(quote.price),
                asset=quote.asset,
                pay_to=quote.pay_to,
                max_timeout_seconds=quote.max_timeout_seconds,
            )
        ]

    def match(
        self, payload: dict[str, Any], offered: Sequence[PaymentRequirements], *, now: float
    ) -> Matched[dict[str, Any]] | Refusal:
        return Matched(payload, offered[0], "0xpayer", int(offered[0].amount), (self.caip2, "0xpayer", "1"))

    async def verify(self, matched: Matched[dict[str, Any]]) -> Verdict:
        return Valid(matched.payer)

    async def settle(
        self, matched: Matched[dict[str, Any]], verdict: Settleable, *, charge: int
    ) -> Settled | Refusal:
        return Settled("0xtx", self.caip2, matched.payer, charge)

    async def release(self, matched: Matched[dict[str, Any]], verdict: Settleable) -> None:
        return None

    def receipt(self, settled: Settled) -> SettleResponse:
        return SettleResponse(success=True, transaction=settled.transaction, network=settled.network)

    async def reconcile(self, payload: dict[str, Any], requirements: PaymentRequirements) -> OnChain:
        return OnChain("unknown")


def test_a_minimal_scheme_satisfies_the_protocol() -> None:
    scheme: Scheme[dict[str, Any]] = Token("exact", "eip155:84532")  # mypy checks the structure
    assert isinstance(scheme, Scheme)
    assert not isinstance(object(), Scheme)


def test_the_payload_names_its_scheme_and_network_in_v2_accepted_and_at_the_top_in_v1() -> None:
    assert scheme_and_network({"accepted": {"scheme": "exact", "network": "eip155:8453"}}) == (
        "exact",
        "eip155:8453",
    )
    # v1 writes a network name; a known one is read as its CAIP-2 id, an unknown one as written.
    assert scheme_and_network({"scheme": "exact", "network": "base-sepolia"}) == ("exact", "eip155:84532")
    assert scheme_and_network({"scheme": "exact", "network": "atlantis"}) == ("exact", "atlantis")
    refused = scheme_and_network({"accepted": {"scheme": 7, "network": "eip155:8453"}})
    assert isinstance(refused, Refusal)
    assert refused.reason == "invalid_payload"
    assert "accepted.scheme and accepted.network" in refused.message


def test_the_registry_finds_the_scheme_a_payload_names() -> None:
    evm, svm = Token("exact", "eip155:84532"), Token("exact", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1")
    batch = Token("batch-settlement", "eip155:84532")
    registry = SchemeRegistry([evm, svm, batch])
    assert registry.for_payload({"accepted": {"scheme": "exact", "network": svm.caip2}}) is svm
    assert registry.for_payload({"scheme": "exact", "network": "base-sepolia"}) is evm
    assert registry.lookup("batch-settlement", "eip155:84532") is batch
    assert list(registry) == [evm, svm, batch]
    assert len(registry) == 3


def test_an_unknown_scheme_is_refused_naming_what_is_accepted() -> None:
    registry = SchemeRegistry([Token("exact", "eip155:84532")])
    refused = registry.lookup("upto", "eip155:84532")
    assert refused == Refusal(
        "unsupported_scheme",
        "The payment uses the 'upto' scheme, which this server does not accept; "
        "it accepts: exact on eip155:84532.",
    )


def test_a_known_scheme_on_another_network_is_a_network_mismatch() -> None:
    registry = SchemeRegistry([Token("exact", "eip155:84532")])
    refused = registry.for_payload({"accepted": {"scheme": "exact", "network": "eip155:8453"}})
    assert isinstance(refused, Refusal)
    assert refused.reason == "network_mismatch"
    assert "eip155:8453" in refused.message and "exact on eip155:84532" in refused.message


def test_an_empty_registry_says_it_accepts_nothing() -> None:
    refused = SchemeRegistry().lookup("exact", "eip155:84532")
    assert isinstance(refused, Refusal)
    assert refused.message.endswith("it accepts: nothing.")


def test_two_schemes_for_one_name_and_network_are_a_configuration_error() -> None:
    with pytest.raises(
        ConfigurationError, match="two payment schemes are registered for 'exact' on eip155:84532"
    ):
        SchemeRegistry([Token("exact", "eip155:84532"), Token("exact", "eip155:84532")])


@pytest.mark.anyio
async def test_accepts_lists_every_schemes_entries_in_registration_order() -> None:
    registry = SchemeRegistry([Token("exact", "eip155:84532"), Token("batch-settlement", "eip155:84532")])
    accepts = await registry.accepts(Offered())
    assert [(entry.scheme, entry.network, entry.amount) for entry in accepts] == [
        ("exact", "eip155:84532", "1500"),
        ("batch-settlement", "eip155:84532", "1500"),
    ]


def test_one_refusal_value_type() -> None:
    assert checks.Refusal is Refusal
    error = PaymentMismatch("wrong payee", reason="invalid_exact_evm_payload_recipient_mismatch")
    assert Refusal.of(error) == Refusal("invalid_exact_evm_payload_recipient_mismatch", "wrong payee")
