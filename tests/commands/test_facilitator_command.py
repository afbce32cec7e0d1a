"""`x402-mcp facilitator --receipt-poll`: parsed, validated, and handed to the settlement backend."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import uvicorn
from eth_account import Account

from x402_mcp.commands import facilitator
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

    args = _parse(*options)
    assert args.run(args) == 0
    assert len(served) == 1
    [backend] = built
    assert backend._poll_latency == expected
