"""One address rule at every door: EIP-55 where case is mixed, no zero address, `0x` required,
and a payee that is not the token contract (constructor, `X402_*`, CLI flags, facilitator)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

import pytest

from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.cli import COMMANDS
from x402_mcp.cli import facilitator as facilitator_command
from x402_mcp.core.addresses import parse_address, parse_payee
from x402_mcp.core.networks import BASE, Asset
from x402_mcp.errors import ConfigurationError
from x402_mcp.facilitator import facilitator_app
from x402_mcp.gate.config import settings_from_env
from x402_mcp.settlement.local import LocalSettlement

USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
GAS_KEY = "0x" + "11" * 32


def miscased(address: str) -> str:
    """`address` with the case of one letter flipped: still 40 hex digits, checksum broken."""
    index = next(i for i, char in enumerate(address) if i >= 2 and char.isalpha())
    return address[:index] + address[index].swapcase() + address[index + 1 :]


BAD_CHECKSUM = miscased(PAYEE)
ZERO = "0x" + "0" * 40

# (value, words the error must contain)
REFUSED = [
    (BAD_CHECKSUM, "fails its EIP-55 checksum"),
    (miscased(USDC_BASE), "copy the address again"),
    (ZERO, "zero address"),
    ("0X" + "0" * 39 + "1", "lower-case 0x"),
    (PAYEE[2:], "does not start with 0x"),
    (PAYEE + "0", "exactly 40 hex digits"),
    (PAYEE[:-1], "exactly 40 hex digits"),
    ("0x" + "g" * 40, "exactly 40 hex digits"),
    ("0x" + "1" * 20 + " " + "1" * 19, "exactly 40 hex digits"),
    ("", "empty"),
]


def test_every_case_form_of_a_right_address_gives_its_checksum() -> None:
    assert parse_address(PAYEE, what="x") == PAYEE
    assert parse_address(PAYEE.lower(), what="x") == PAYEE
    assert parse_address("0x" + PAYEE[2:].upper(), what="x") == PAYEE
    assert parse_address(f"  {PAYEE}\n", what="x") == PAYEE


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_a_wrong_address_is_refused_naming_its_source(value: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as raised:
        parse_address(value, what="SOME_SETTING")
    assert str(raised.value).startswith("SOME_SETTING")


@pytest.mark.parametrize("value", [None, 42, b"0x" + b"1" * 40, ["0x" + "1" * 40]])
def test_a_value_that_is_not_text_is_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be an EVM address as text"):
        parse_address(value, what="pay_to")


def test_a_payee_may_not_be_the_token_in_any_case() -> None:
    for form in (USDC_BASE, USDC_BASE.lower(), "0x" + USDC_BASE[2:].upper()):
        with pytest.raises(ConfigurationError, match="is the token contract itself"):
            parse_payee(form, what="pay_to", asset=USDC_BASE)
    assert parse_payee(PAYEE, what="pay_to", asset=USDC_BASE) == PAYEE


# -- Payments(...) --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_the_constructor_refuses_a_wrong_pay_to(
    chain: DevChain, tmp_path: Path, value: str, words: str
) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Payments(value, chain.network, settlement=chain.settlement(), ledger=str(tmp_path / "l.sqlite"))


def test_the_constructor_keeps_the_checksummed_payee(chain: DevChain, tmp_path: Path) -> None:
    payments = Payments(PAYEE.lower(), chain.network, settlement=chain.settlement(), ledger=":memory:")
    assert payments.pay_to == PAYEE


def test_the_constructor_refuses_the_token_as_payee(chain: DevChain) -> None:
    # The network's own USDC, and an asset passed explicitly, in any case.
    with pytest.raises(ConfigurationError, match=r"pay_to=.* is the token contract itself"):
        Payments(chain.usdc.lower(), chain.network, settlement=chain.settlement(), ledger=":memory:")
    asset = Asset(USDC_BASE, name="USD Coin")
    with pytest.raises(ConfigurationError, match="is the token contract itself"):
        Payments(USDC_BASE, "base", asset=asset, settlement=chain.settlement(), ledger=":memory:")


@pytest.mark.parametrize(("value", "words"), REFUSED[:-1])
def test_an_asset_with_a_wrong_address_is_refused(value: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Asset(value, name="USD Coin")


# -- X402_* ---------------------------------------------------------------------------------


def _local(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {
        "X402_SETTLEMENT": "local",
        "X402_RPC_URL": "http://127.0.0.1:1",
        "X402_SETTLEMENT_KEY": GAS_KEY,
        "X402_PAY_TO": PAYEE,
        "X402_NETWORK": "base",
        "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
    }
    return {**env, **changes}


@pytest.mark.parametrize("variable", ["X402_PAY_TO", "X402_ASSET", "X402_ERC6492_FACTORIES"])
@pytest.mark.parametrize(("value", "words"), REFUSED[:-1])
def test_each_address_variable_is_held_to_the_rule(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    extra = {"X402_ASSET_NAME": "USD Coin"} if variable == "X402_ASSET" else {}
    with pytest.raises(ConfigurationError, match=words) as raised:
        settings_from_env(_local(tmp_path, **{variable: value}, **extra))
    assert str(raised.value).startswith(variable)


def test_a_factory_list_names_the_bad_entry_among_good_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"X402_ERC6492_FACTORIES=.*fails its EIP-55"):
        settings_from_env(_local(tmp_path, X402_ERC6492_FACTORIES=f"{PAYEE.lower()}, {BAD_CHECKSUM}"))


@pytest.mark.parametrize("kind", ["local", "facilitator"])
def test_x402_pay_to_may_not_be_the_network_usdc(tmp_path: Path, kind: str) -> None:
    env = _local(tmp_path, X402_SETTLEMENT=kind, X402_PAY_TO=USDC_BASE.lower())
    env["X402_FACILITATOR_URL"] = "https://facilitator.example"
    with pytest.raises(ConfigurationError, match=r"X402_PAY_TO=.* is the token contract itself"):
        settings_from_env(env)


def test_x402_pay_to_may_not_be_x402_asset(tmp_path: Path) -> None:
    token = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    env = _local(tmp_path, X402_NETWORK="eip155:31337", X402_ASSET=token, X402_ASSET_NAME="USD Coin")
    with pytest.raises(ConfigurationError, match=r"X402_PAY_TO=.* is the token contract itself"):
        settings_from_env({**env, "X402_PAY_TO": token.lower()})


def test_the_devchain_payee_is_held_to_the_rule_too() -> None:
    with pytest.raises(ConfigurationError, match=r"X402_PAY_TO=.* fails its EIP-55 checksum"):
        settings_from_env({"X402_SETTLEMENT": "devchain", "X402_PAY_TO": BAD_CHECKSUM})


# -- command-line flags ----------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="x402-mcp")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"x402_mcp.cli.{name}").register(commands)
    return parser.parse_args(argv)


ADDRESS_FLAGS = [
    (["facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base"], "--pay-to", "pay_to"),
    (["claude-config", "echo"], "--pay-to", "pay_to"),
    (["claude-config", "echo"], "--asset", "asset"),
    (["serve", "echo"], "--pay-to", "pay_to"),
    (["call", "http://127.0.0.1:1/mcp", "tool"], "--payee", "payee"),
    (["call", "http://127.0.0.1:1/mcp", "tool"], "--asset", "asset"),
]


@pytest.mark.parametrize(("command", "flag", "dest"), ADDRESS_FLAGS)
@pytest.mark.parametrize(("value", "words"), REFUSED[:6])
def test_every_address_flag_is_held_to_the_rule(
    command: list[str], flag: str, dest: str, value: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse([*command, flag, value])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert flag in error and words in error


@pytest.mark.parametrize(("command", "flag", "dest"), ADDRESS_FLAGS)
def test_every_address_flag_gives_the_checksummed_address(command: list[str], flag: str, dest: str) -> None:
    parsed = getattr(_parse([*command, flag, PAYEE.lower()]), dest)
    assert parsed == PAYEE or parsed == [PAYEE]


def test_a_comma_separated_payee_flag_checks_each_entry(capsys: pytest.CaptureFixture[str]) -> None:
    command = ["facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base", "--pay-to"]
    assert _parse([*command, f"{PAYEE.lower()}, {USDC_BASE}"]).pay_to == [f"{PAYEE},{USDC_BASE}"]
    with pytest.raises(SystemExit):
        _parse([*command, f"{PAYEE},{BAD_CHECKSUM}"])
    assert "EIP-55" in capsys.readouterr().err


def test_the_facilitator_payee_variable_is_held_to_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(facilitator_command.PAY_TO_VARIABLE, f"{PAYEE},{BAD_CHECKSUM}")
    args = _parse(["facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base"])
    with pytest.raises(ConfigurationError, match=f"{facilitator_command.PAY_TO_VARIABLE}=.* EIP-55"):
        facilitator_command._payees(args)


# -- the facilitator's allow-list ----------------------------------------------------------------


@pytest.mark.parametrize(("value", "words"), REFUSED[:-1])
def test_the_facilitator_allow_list_is_held_to_the_rule(value: str, words: str) -> None:
    settlement = LocalSettlement.from_rpc("http://127.0.0.1:1", GAS_KEY, network=BASE)
    with pytest.raises(ConfigurationError, match=words):
        facilitator_app(settlement, payees=[PAYEE, value])


def test_the_facilitator_refuses_to_settle_for_its_own_token() -> None:
    settlement = LocalSettlement.from_rpc("http://127.0.0.1:1", GAS_KEY, network=BASE)
    with pytest.raises(ConfigurationError, match="is the token contract itself"):
        facilitator_app(settlement, payees=[USDC_BASE.lower()])
    assert facilitator_app(settlement, payees=[PAYEE.lower()]) is not None
