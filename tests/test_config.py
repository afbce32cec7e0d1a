"""`Payments.from_env`: every setting of a server settling on a JSON-RPC chain, and each bad one named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from x402_mcp import Payments
from x402_mcp.core.networks import Asset
from x402_mcp.errors import ConfigurationError
from x402_mcp.gate.config import development_chain, settings_from_env
from x402_mcp.settlement.local import LocalSettlement

GAS_KEY = "0x" + "11" * 32
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAYEE = "0x000000000000000000000000000000000000dEaD"


def local_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    """A complete local-settlement environment for a devnet-like chain (nothing is sent to it)."""
    env = {
        "X402_SETTLEMENT": "local",
        "X402_RPC_URL": "http://127.0.0.1:1",
        "X402_SETTLEMENT_KEY": GAS_KEY,
        "X402_PAY_TO": PAYEE,
        "X402_NETWORK": "eip155:31337",
        "X402_ASSET": TOKEN.lower(),
        "X402_ASSET_NAME": "USD Coin",
        "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
    }
    env.update(changes)
    return {name: value for name, value in env.items() if value != "<unset>"}


def test_a_token_on_any_chain_comes_from_the_environment(tmp_path: Path) -> None:
    env = local_env(tmp_path, X402_ASSET_VERSION="1", X402_ASSET_DECIMALS="18")
    payments = Payments.from_env(env)
    assert payments.network.caip2 == "eip155:31337" and payments.network.chain_id == 31337
    assert payments.asset == Asset(TOKEN, name="USD Coin", version="1", decimals=18)
    assert payments.asset.address == TOKEN  # checksummed
    assert isinstance(payments.settlement, LocalSettlement)
    assert payments.settlement.network.caip2 == "eip155:31337"
    assert payments.pay_to == PAYEE and payments.demo_chain is None


def test_the_token_version_and_decimals_default_to_usdc_s(tmp_path: Path) -> None:
    settings, chain = settings_from_env(local_env(tmp_path))
    assert chain is None
    assert settings["asset"] == Asset(TOKEN, name="USD Coin", version="2", decimals=6)


def test_a_known_network_keeps_its_usdc_without_x402_asset(tmp_path: Path) -> None:
    env = local_env(tmp_path, X402_NETWORK="base-sepolia", X402_ASSET="<unset>", X402_ASSET_NAME="<unset>")
    payments = Payments.from_env(env)
    assert payments.asset.address == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"X402_ASSET": "<unset>", "X402_ASSET_NAME": "<unset>"},
         "X402_NETWORK=eip155:31337 has no known USDC: set X402_ASSET"),
        ({"X402_ASSET": "0x1234"}, "X402_ASSET='0x1234' is not an EVM address"),
        ({"X402_ASSET_NAME": "<unset>"}, "X402_ASSET needs X402_ASSET_NAME"),
        ({"X402_ASSET_NAME": "USD\u202eCoin"}, r"X402_ASSET_NAME='USD\\\\u202eCoin' must be printable"),
        ({"X402_ASSET_VERSION": "v" * 65}, "X402_ASSET_VERSION=.* at most 64 characters"),
        ({"X402_ASSET_DECIMALS": "six"}, "X402_ASSET_DECIMALS must be a string of ASCII decimal digits"),
        ({"X402_ASSET_DECIMALS": "06"}, "X402_ASSET_DECIMALS must be a string of ASCII decimal digits"),
        ({"X402_ASSET_DECIMALS": "77"}, "X402_ASSET_DECIMALS=77 is more than 36"),
        ({"X402_ASSET": "<unset>", "X402_NETWORK": "base-sepolia"},
         "X402_ASSET_NAME describe a token, but X402_ASSET .* is not set"),
        ({"X402_PAY_TO": "0xnope"}, "X402_PAY_TO='0xnope' is not an EVM address"),
        ({"X402_NETWORK": "mars"}, "X402_NETWORK='mars' is not a network"),
        ({"X402_RPC_URL": "ftp://node.example/key123"}, "X402_RPC_URL must start with http:// or https://"),
        ({"X402_SETTLEMENT_KEY": "0x1234"}, "X402_SETTLEMENT_KEY must be a private key"),
        ({"X402_SETTLEMENT_KEY": "0x" + "00" * 32}, "X402_SETTLEMENT_KEY is not a valid secp256k1"),
        ({"X402_PAGE_PORT": "８０"}, "X402_PAGE_PORT='８０' is not a port number"),
        ({"X402_ERC6492_FACTORIES": f"{TOKEN},factory"}, "X402_ERC6492_FACTORIES='factory' is not an"),
    ],
)  # fmt: skip
def test_each_bad_setting_is_named(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        settings_from_env(local_env(tmp_path, **changes))
    # Neither the gas key nor the RPC URL (which may carry an API key) is ever quoted.
    assert GAS_KEY not in str(raised.value) and "key123" not in str(raised.value)
    assert changes.get("X402_SETTLEMENT_KEY", GAS_KEY) not in str(raised.value)


def test_extra_smart_wallet_factories_come_from_the_environment(tmp_path: Path) -> None:
    factory = "0x" + "ab" * 20
    settings, _ = settings_from_env(local_env(tmp_path, X402_ERC6492_FACTORIES=f" {factory} ,"))
    assert factory in settings["settlement"].erc6492_factories


def test_the_devchain_refuses_a_token_it_would_ignore() -> None:
    with pytest.raises(ConfigurationError, match="X402_ASSET needs X402_SETTLEMENT=local"):
        settings_from_env({"X402_SETTLEMENT": "devchain", "X402_ASSET": TOKEN, "X402_ASSET_NAME": "USD Coin"})


def test_the_default_configuration_needs_no_secret(tmp_path: Path) -> None:
    # What a stdio sample in Claude Desktop runs with: no key, no RPC, an embedded chain.
    payments = Payments.from_env({"X402_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}"})
    assert payments.demo_chain is not None
    assert payments.network.caip2 == payments.demo_chain.network


@pytest.mark.parametrize("port", ["²", "８０８０", "-1", "65536", "80.0", "http"])
def test_a_page_port_that_is_not_a_port_number_is_named(port: str) -> None:
    with pytest.raises(ConfigurationError, match=r"X402_PAGE_PORT=.* is not a port number"):
        settings_from_env({"X402_SETTLEMENT": "cloud", "X402_PAGE_PORT": port})


def test_the_devchain_is_found_by_name_without_the_development_code_imported() -> None:
    # gate.config imports no development code: `devchain` comes from the package's entry point.
    probe = (
        "import sys\n"
        "from x402_mcp.gate.config import development_chain\n"
        "assert 'x402_mcp.chains' not in sys.modules\n"
        "print(development_chain('devchain')().network)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "eip155:1337", done.stderr


def test_a_development_chain_that_is_not_installed_is_named() -> None:
    with pytest.raises(ConfigurationError, match="X402_SETTLEMENT=nosuchchain needs the development chain"):
        development_chain("nosuchchain")
