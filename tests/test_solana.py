"""Solana payees: configuration, requirements and the pure match of a Solana payment."""

import base64

import pytest

from x402_mcp import ConfigurationError, Payments, Solana
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.challenge import Offer, challenge_result, describe_paid_tool
from x402_mcp.core.networks import (
    BASE_SEPOLIA,
    SOLANA,
    SOLANA_DEVNET,
    is_solana_address,
    resolve_any_network,
    resolve_solana_network,
)
from x402_mcp.core.pricing import paid_spec
from x402_mcp.core.wire import SvmPaymentPayload, parse_evm_payment, parse_payment_payload
from x402_mcp.errors import MalformedPayment, PaymentMismatch
from x402_mcp.gate.config import settings_from_env
from x402_mcp.gate.paid import paid
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.schemes.exact.evm import requirements_for
from x402_mcp.schemes.exact.matching import match_solana_payment, referenced_request_id
from x402_mcp.settlement.facilitator import FacilitatorSettlement

PAYEE = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
FEE_PAYER = "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd"
TRANSACTION = base64.b64encode(bytes(range(200))).decode()
REQUEST = PaymentRequest(
    id="pr_solana",
    tool="summarize",
    price=50_000,
    asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    network="eip155:84532",
    pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    caller=None,
    created_at=1000.0,
    expires_at=1600.0,
    max_timeout_seconds=600,
)


def test_solana_networks_resolve_by_name_and_caip2() -> None:
    assert resolve_solana_network("solana-devnet") is SOLANA_DEVNET
    assert resolve_solana_network(SOLANA.caip2) is SOLANA
    assert resolve_any_network("solana") is SOLANA
    assert resolve_any_network("base-sepolia").caip2 == "eip155:84532"
    custom = resolve_solana_network("solana:" + "1" * 32)
    assert custom.usdc_mint is None
    with pytest.raises(ConfigurationError, match="unknown Solana network"):
        resolve_solana_network("solana:devnet")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (PAYEE, True),
        ("11111111111111111111111111111111", True),  # the system program: 32 zero bytes
        (SOLANA_DEVNET.usdc_mint, True),
        ("0x209693Bc6afc0C5328bA36FaF03C514EF312287C", False),
        ("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWW0", False),  # 0 is not base58
        ("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWMM", False),  # 33 bytes
        (None, False),
    ],
)
def test_solana_addresses_are_base58_of_32_bytes(value: object, valid: bool) -> None:
    assert is_solana_address(value) is valid


def test_a_solana_payee_offers_devnet_usdc_with_the_fee_payer_and_the_request_as_memo() -> None:
    option = Solana(PAYEE, settlement=FacilitatorSettlement("http://127.0.0.1:9", network="solana-devnet"))
    requirements = option.requirements(REQUEST, FEE_PAYER)
    assert requirements.dump() == {
        "scheme": "exact",
        "network": SOLANA_DEVNET.caip2,
        "amount": "50000",
        "asset": SOLANA_DEVNET.usdc_mint,
        "payTo": PAYEE,
        "maxTimeoutSeconds": 600,
        "extra": {"feePayer": FEE_PAYER, "memo": "pr_solana", "paymentRequestId": "pr_solana"},
    }


def test_solana_configuration_errors_are_named() -> None:
    with pytest.raises(ConfigurationError, match="not a base58 Solana address"):
        Solana("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
    with pytest.raises(ConfigurationError, match="mainnet"):
        Solana(PAYEE, network="solana")  # no default facilitator where real money moves
    with pytest.raises(ConfigurationError, match="no USDC mint"):
        Solana(PAYEE, network="solana:" + "1" * 32, settlement=FacilitatorSettlement("http://127.0.0.1:9"))
    with pytest.raises(ConfigurationError, match="decimals"):
        Payments(
            "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            settlement=DevChain().settlement(),
            network="eip155:1337",
            ledger="sqlite:///:memory:",
            also_accept=[Solana(PAYEE, decimals=9)],
        )


def _svm_payload(**changes: object) -> dict[str, object]:
    accepted = {
        **Solana(PAYEE).requirements(REQUEST, FEE_PAYER).dump(),
        **changes,
    }
    return {"x402Version": 2, "accepted": accepted, "payload": {"transaction": TRANSACTION}}


def test_solana_payloads_parse_by_their_network_and_match_our_requirements() -> None:
    payload = parse_payment_payload(_svm_payload())
    assert isinstance(payload, SvmPaymentPayload)
    assert referenced_request_id(payload) == "pr_solana"
    match_solana_payment(payload, Solana(PAYEE).requirements(REQUEST, FEE_PAYER))
    with pytest.raises(MalformedPayment, match="only EVM networks"):
        parse_evm_payment(_svm_payload())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"payTo": FEE_PAYER}, "payee"),
        ({"amount": "49999"}, "amount"),
        ({"asset": FEE_PAYER}, r"asset \(mint\)"),
        ({"network": SOLANA.caip2}, "network"),
        ({"extra": {"feePayer": PAYEE}}, "fee payer"),
    ],
)
def test_a_solana_payment_for_other_requirements_is_refused_by_name(
    change: dict[str, object], named: str
) -> None:
    payload = parse_payment_payload(_svm_payload(**change))
    assert isinstance(payload, SvmPaymentPayload)
    with pytest.raises(PaymentMismatch, match=f"the payment's {named} is"):
        match_solana_payment(payload, Solana(PAYEE).requirements(REQUEST, FEE_PAYER))


@pytest.mark.parametrize(
    ("transaction", "message"),
    [("not base64!", "base64"), ("", "empty")],
)
def test_malformed_solana_transactions_are_refused(transaction: str, message: str) -> None:
    raw = {**_svm_payload(), "payload": {"transaction": transaction}}
    with pytest.raises(MalformedPayment, match=message):
        parse_payment_payload(raw)


def test_v1_solana_payloads_are_refused_with_the_reason() -> None:
    raw = {
        "x402Version": 1,
        "scheme": "exact",
        "network": "solana-devnet",
        "payload": {"transaction": "AA=="},
    }
    with pytest.raises(MalformedPayment, match="version 2 only"):
        parse_payment_payload(raw)


def test_the_challenge_lists_every_network_for_machines_and_people() -> None:
    assert BASE_SEPOLIA.usdc is not None
    offer = Offer(
        BASE_SEPOLIA,
        BASE_SEPOLIA.usdc,
        REQUEST.pay_to,
        "http://127.0.0.1:8402",
        ((SOLANA_DEVNET.caip2, str(SOLANA_DEVNET.usdc_mint), PAYEE),),
    )
    accepts = [
        requirements_for(REQUEST, BASE_SEPOLIA.usdc),
        Solana(PAYEE).requirements(REQUEST, FEE_PAYER),
    ]
    result = challenge_result(REQUEST, offer, now=1000.0, accepts=accepts)
    assert result.structured_content is not None
    networks = [entry["network"] for entry in result.structured_content["accepts"]]
    assert networks == ["eip155:84532", SOLANA_DEVNET.caip2]
    assert "also pay on Solana Devnet" in result.content[1].text  # type: ignore[union-attr]

    @paid(price="0.05")
    def summarize() -> str:
        return ""

    spec = paid_spec(summarize)
    assert spec is not None
    tool: dict[str, object] = {"name": "summarize", "inputSchema": {"type": "object"}}
    describe_paid_tool(tool, spec, offer)
    price = tool["_meta"]["x402-mcp/price"]  # type: ignore[index]
    assert price["alsoAccepts"] == [  # type: ignore[index]
        {"network": SOLANA_DEVNET.caip2, "asset": SOLANA_DEVNET.usdc_mint, "payTo": PAYEE}
    ]


def test_solana_is_configured_from_the_environment() -> None:
    settings, _ = settings_from_env(
        {
            "X402_SETTLEMENT": "devchain",  # a Solana payee is a production setting: the choice is explicit
            "X402_SOLANA_PAY_TO": PAYEE,
            "X402_SOLANA_FACILITATOR_URL": "http://127.0.0.1:9",
            "X402_LEDGER_URL": "sqlite:///:memory:",
        }
    )
    (option,) = settings["also_accept"]
    assert (option.pay_to, option.network) == (PAYEE, SOLANA_DEVNET)
    assert isinstance(option.settlement, FacilitatorSettlement)
    assert option.settlement.url == "http://127.0.0.1:9"
    assert settings_from_env({})[0]["also_accept"] == []
