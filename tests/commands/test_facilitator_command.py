"""`x402-mcp facilitator`: its options parsed, validated, and handed to the app and the settlement backend."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

import httpx2
import pytest
import uvicorn
from eth_account import Account

from x402_mcp.cli import facilitator
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.networks import BASE
from x402_mcp.core.wire import PaymentPayload, PaymentRequirements
from x402_mcp.facilitator import AMOUNT_BELOW_MINIMUM, ASSET_NOT_ALLOWED, PAYEE_NOT_ALLOWED, TOKEN_VARIABLE
from x402_mcp.settlement.local import RECEIPT_POLL_SECONDS, LocalSettlement


def _parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="x402-mcp")
    facilitator.register(parser.add_subparsers(dest="command", required=True))
    command = ["facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base"]
    return parser.parse_args([*command, *options])


def test_receipt_poll_is_parsed_as_seconds() -> None:
    assert _parse("--receipt-poll", "0.5").receipt_poll == 0.5
    assert _parse().receipt_poll is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "expected a number of seconds, got 'soon'"),
        ("0", "must be more than 0 and at most 60 seconds, got '0'"),
        ("-1", "must be more than 0 and at most 60 seconds, got '-1'"),
        ("nan", "must be more than 0 and at most 60 seconds, got 'nan'"),
        ("61", "must be more than 0 and at most 60 seconds, got '61'"),
    ],
)
def test_a_bad_receipt_poll_is_refused_with_a_clear_error(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parse(f"--receipt-poll={value}")
    assert exit_.value.code == 2
    assert f"argument --receipt-poll: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "expected"), [(["--receipt-poll", "2"], 2.0), ([], RECEIPT_POLL_SECONDS)]
)
def test_the_receipt_poll_reaches_the_settlement_backend(
    options: list[str], expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []
    built: list[LocalSettlement] = []
    from_rpc = LocalSettlement.from_rpc

    def spy(*args: Any, **kwargs: Any) -> LocalSettlement:
        built.append(from_rpc(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(LocalSettlement, "from_rpc", spy)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))
    monkeypatch.setenv(facilitator.KEY_VARIABLE, Account.create().key.to_0x_hex())

    args = _parse("--any-payee", *options)
    assert args.run(args) == 0
    assert len(served) == 1
    [backend] = built
    assert backend._poll_latency == expected


# --------------------------------------------------------------------------- who it serves

PAYEE = Account.create().address


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What `uvicorn.run` would serve, instead of serving it; the gas key set, no token or payees."""
    apps: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: apps.append((app, kwargs)))
    monkeypatch.setenv(facilitator.KEY_VARIABLE, Account.create().key.to_0x_hex())
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    monkeypatch.delenv(facilitator.PAY_TO_VARIABLE, raising=False)
    return apps


@pytest.mark.parametrize(
    ("options", "environment", "message"),
    [
        ([], {}, "name the payees it settles for with --pay-to or X402_FACILITATOR_PAY_TO"),
        (["--any-payee", "--pay-to", PAYEE], {}, "contradict each other"),
        # (a bad --pay-to is refused while the command line is parsed: tests/test_addresses.py)
        ([], {"X402_FACILITATOR_PAY_TO": "0xnot-an-address"}, "is not an EVM address"),
        (["--host", "0.0.0.0", "--any-payee"], {}, "refusing to listen on 0.0.0.0 without a token"),
        (["--host", "192.0.2.7", "--pay-to", PAYEE], {}, "Set X402_FACILITATOR_TOKEN"),
        (["--pay-to", PAYEE], {TOKEN_VARIABLE: "short"}, "at least 16 characters"),
        (["--pay-to", PAYEE], {TOKEN_VARIABLE: "a token with spaces in it"}, "without spaces"),
    ],
)
def test_it_refuses_to_start_unguarded_with_a_clear_error(
    options: list[str],
    environment: dict[str, str],
    message: str,
    served: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    args = _parse(*options)
    assert args.run(args) == 2
    assert message in capsys.readouterr().err
    assert served == []


@pytest.mark.parametrize("value", ["0", "050000", "²", "１０００", "-1", "1.5", str(2**256)])
def test_a_bad_minimum_amount_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parse("--any-payee", f"--min-amount={value}")
    assert exit_.value.code == 2
    assert "argument --min-amount:" in capsys.readouterr().err


async def _verify(app: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8403") as http:
        return await http.post("/verify", json=body, headers=headers or {})


def _body(pay_to: str, amount: int) -> dict[str, Any]:
    requirements = PaymentRequirements(
        scheme="exact",
        network=BASE.caip2,
        amount=str(amount),
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",  # USDC on Base
        pay_to=pay_to,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )
    payment = PaymentPayload(
        accepted=requirements, payload=sign_authorization(Account.create(), requirements)
    )
    return {"x402Version": 2, "paymentPayload": payment.dump(), "paymentRequirements": requirements.dump()}


@pytest.mark.anyio
async def test_the_token_payees_and_minimum_reach_the_app(
    served: list[tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = secrets.token_hex(32)
    other = Account.create().address
    monkeypatch.setenv(TOKEN_VARIABLE, token)
    monkeypatch.setenv(facilitator.PAY_TO_VARIABLE, f" {PAYEE}, {other.lower()} ")
    args = _parse("--host", "0.0.0.0", "--min-amount", "5000")
    assert args.run(args) == 0
    [(app, options)] = served
    assert options["host"] == "0.0.0.0"
    printed = capsys.readouterr().err
    assert "bearer token required; 2 payee(s); at least 5000 units" in printed
    assert token not in printed

    bearer = {"Authorization": f"Bearer {token}"}
    assert (await _verify(app, _body(PAYEE, 5000))).status_code == 401
    stranger = (await _verify(app, _body(Account.create().address, 5000), bearer)).json()
    assert (stranger["isValid"], stranger["invalidReason"]) == (False, PAYEE_NOT_ALLOWED)
    cheap = (await _verify(app, _body(other, 4999), bearer)).json()
    assert (cheap["isValid"], cheap["invalidReason"]) == (False, AMOUNT_BELOW_MINIMUM)


@pytest.mark.anyio
async def test_the_tokens_it_serves_default_to_the_networks_usdc_and_asset_names_others(
    served: list[tuple[Any, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    other_token = Account.create().address
    args = _parse("--pay-to", PAYEE, "--asset", other_token)
    assert args.run(args) == 0
    [(app, _)] = served
    usdc = (await _verify(app, _body(PAYEE, 5000))).json()
    assert (usdc["isValid"], usdc["invalidReason"]) == (False, ASSET_NOT_ALLOWED)
    assert other_token.lower() in usdc["invalidMessage"]

    for options, message in (
        (["--asset", "0xnope"], "is not an EVM address"),
        (["--network", "eip155:999999"], "name the token contract(s)"),
    ):
        args = _parse("--pay-to", PAYEE, *options)
        assert args.run(args) == 2
        assert message in capsys.readouterr().err
    assert len(served) == 1
