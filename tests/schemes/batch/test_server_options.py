"""Turning batch-settlement on: the receiver authorizer's key from the environment (a public
development key on development chains only, a bad key never repeated), the settings that
cannot offer it refused with a sentence that says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.networks import resolve_network
from x402_mcp.errors import ConfigurationError
from x402_mcp.gate.batch import AUTHORIZER_KEY_VARIABLE, receiver_authorizer
from x402_mcp.gate.config import settings_from_env
from x402_mcp.ledger.sqlite import SQLiteLedger


def test_a_development_chain_needs_no_secret_and_a_real_one_does() -> None:
    dev = receiver_authorizer(resolve_network("eip155:31337"), {})
    assert dev.address == receiver_authorizer(resolve_network("eip155:1337"), {}).address
    with pytest.raises(ConfigurationError, match=AUTHORIZER_KEY_VARIABLE):
        receiver_authorizer(resolve_network("base-sepolia"), {})
    key = Account.create()
    chosen = receiver_authorizer(resolve_network("base-sepolia"), {AUTHORIZER_KEY_VARIABLE: key.key.hex()})
    assert chosen.address == key.address


def test_a_bad_key_is_refused_without_being_repeated() -> None:
    secret = "0x" + "ab" * 31 + "zz"
    with pytest.raises(ConfigurationError) as refused:
        receiver_authorizer(resolve_network("base-sepolia"), {AUTHORIZER_KEY_VARIABLE: secret})
    assert "ab" * 4 not in str(refused.value) and "zz" not in str(refused.value)


def test_the_environment_key_is_the_one_announced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Account.create()
    monkeypatch.setenv(AUTHORIZER_KEY_VARIABLE, key.key.hex())
    chain = DevChain()
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "l.sqlite"),
        batch_settlement=True,
    )
    batch = [s for s in payments.gate.collector.schemes if s.scheme == "batch-settlement"]
    assert len(batch) == 1 and batch[0].receiver_authorizer == key.address  # type: ignore[attr-defined]


def test_off_by_default_and_refused_without_a_local_backend(tmp_path: Path) -> None:
    payments = Payments(pay_to=Account.create().address, ledger=SQLiteLedger(tmp_path / "a.sqlite"))
    assert [s.scheme for s in payments.gate.collector.schemes] == ["exact"]
    with pytest.raises(ConfigurationError, match="local settlement backend"):
        Payments(
            pay_to=Account.create().address, ledger=SQLiteLedger(tmp_path / "b.sqlite"), batch_settlement=True
        )


def test_the_environment_switch() -> None:
    settings, _ = settings_from_env({"X402_BATCH_SETTLEMENT": "on"})
    assert settings["batch_settlement"] is True
    assert settings_from_env({})[0]["batch_settlement"] is False
    with pytest.raises(ConfigurationError, match="X402_BATCH_SETTLEMENT"):
        settings_from_env({"X402_BATCH_SETTLEMENT": "maybe"})
