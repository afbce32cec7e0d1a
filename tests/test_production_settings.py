"""No silent test money, every URL checked at start, and no secret quoted by a configuration error."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.challenge import Offer, describe_paid_tool, human_text, payment_sentence
from x402_mcp.core.links import service_url
from x402_mcp.core.networks import BASE, BASE_SEPOLIA, resolve_network
from x402_mcp.core.pricing import paid_spec
from x402_mcp.errors import ConfigurationError
from x402_mcp.gate.config import PRODUCTION_SETTINGS, settings_from_env
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.page.render import money_note
from x402_mcp.settlement.cdp import CdpAuth
from x402_mcp.settlement.facilitator import FacilitatorSettlement
from x402_mcp.settlement.local import LocalSettlement

PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
GAS_KEY = "0x" + "11" * 32
SECRET = "s3cr3tAPIkey"  # planted in every secret-bearing value; never in a message

# A plausible value for each production setting, carrying SECRET where a secret could sit.
PLAUSIBLE = {
    "X402_PAY_TO": PAYEE,
    "X402_NETWORK": "base",
    "X402_RPC_URL": f"https://node.example/v2/{SECRET}",
    "X402_SETTLEMENT_KEY": GAS_KEY,
    "X402_FACILITATOR_URL": f"https://facilitator.example/{SECRET}",
    "X402_FACILITATOR_TOKEN": SECRET * 2,
    "X402_ASSET": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "X402_ASSET_NAME": "USD Coin",
    "X402_ASSET_VERSION": "2",
    "X402_ASSET_DECIMALS": "6",
    "X402_ERC6492_FACTORIES": "0x" + "ab" * 20,
    "X402_SOLANA_PAY_TO": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
    "X402_SOLANA_NETWORK": "solana-devnet",
    "X402_SOLANA_FACILITATOR_URL": f"https://sol.example/{SECRET}",
    "CDP_API_KEY_ID": SECRET,
    "CDP_API_KEY_SECRET": SECRET,
}


def test_every_production_setting_has_a_plausible_value_here() -> None:
    assert set(PLAUSIBLE) == set(PRODUCTION_SETTINGS)


# -- item 4: the dev chain only when chosen or when nothing says otherwise ---------------------


@pytest.mark.parametrize("name", PRODUCTION_SETTINGS)
def test_a_production_setting_without_x402_settlement_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings_from_env({name: PLAUSIBLE[name]})
    message = str(raised.value)
    assert f"X402_SETTLEMENT is not set, but {name} is set" in message
    assert "X402_SETTLEMENT=local" in message and "X402_SETTLEMENT=facilitator" in message
    assert SECRET not in message and (len(PLAUSIBLE[name]) < 4 or PLAUSIBLE[name] not in message)


def test_the_refusal_names_every_production_setting_present() -> None:
    env = {"X402_NETWORK": "base", "X402_PAY_TO": PAYEE, "X402_RPC_URL": PLAUSIBLE["X402_RPC_URL"]}
    with pytest.raises(ConfigurationError, match="X402_PAY_TO, X402_NETWORK, X402_RPC_URL are set"):
        settings_from_env(env)
    with pytest.raises(ConfigurationError, match="X402_SETTLEMENT is not set"):
        Payments.from_env(env)


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_x402_settlement_is_unset(blank: str) -> None:
    with pytest.raises(ConfigurationError, match="X402_SETTLEMENT is not set, but X402_PAY_TO"):
        settings_from_env({"X402_SETTLEMENT": blank, "X402_PAY_TO": PAYEE})


def test_zero_configuration_is_the_dev_chain(tmp_path: Path) -> None:
    env = {
        "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite'}",
        "X402_PUBLIC_URL": "https://shop.example",
        "X402_PAGE_PORT": "0",
    }
    payments = Payments.from_env(env)
    assert isinstance(payments.demo_chain, DevChain) and payments.network.is_dev_chain


def test_the_dev_chain_chosen_explicitly_takes_a_payee(tmp_path: Path) -> None:
    env = {"X402_SETTLEMENT": "DevChain", "X402_PAY_TO": PAYEE.lower(), "X402_LEDGER_URL": ":memory:"}
    payments = Payments.from_env(env)
    assert payments.pay_to == PAYEE and payments.demo_chain is not None


def test_a_production_configuration_has_no_demo_wallet(tmp_path: Path) -> None:
    env = {
        "X402_SETTLEMENT": "facilitator",
        "X402_FACILITATOR_URL": "https://facilitator.example",
        "X402_PAY_TO": PAYEE,
        "X402_NETWORK": "base",
        "X402_LEDGER_URL": ":memory:",
    }
    payments = Payments.from_env(env)
    assert payments.demo_chain is None and not payments.network.is_dev_chain


# -- "test money" wherever a person reads a price ---------------------------------------------


def _request(network: str, asset: str) -> PaymentRequest:
    return PaymentRequest(
        id="pr_abcdefghijklmnopqrstuv",
        tool="answer",
        price=50_000,
        asset=asset,
        network=network,
        pay_to=PAYEE,
        caller=None,
        created_at=1000.0,
        expires_at=1600.0,
        max_timeout_seconds=600,
    )


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


def test_a_dev_chain_price_says_test_money_everywhere(chain: DevChain) -> None:
    network = chain.network_info
    assert network.usdc is not None
    offer = Offer(network, network.usdc, PAYEE, "https://pay.example")
    request = _request(network.caip2, network.usdc.address)
    words = f"This is test money on {network.label}, a development chain: it has no value."
    assert words in payment_sentence(request, offer)
    assert words in human_text(request, offer, now=1000.0)
    tool: dict[str, object] = {"name": "answer", "description": "Answers."}
    spec = paid_spec(paid(price="0.05")(lambda: "yes"))
    assert spec is not None
    describe_paid_tool(tool, spec, offer)
    assert words in str(tool["description"])
    note, _ = money_note(network, demo=False)
    assert "test money" in note and "demo wallet" not in note  # no demo wallet is offered there
    assert "demo wallet" in money_note(network, demo=True)[0]


@pytest.mark.parametrize("chain_id", [1337, 31337])
def test_the_dev_chain_ids_are_test_money_by_any_name(chain_id: int) -> None:
    network = resolve_network(f"eip155:{chain_id}")
    assert network.is_dev_chain and network.pays_test_money
    assert "test money" in money_note(network, demo=False)[0]


def test_real_money_is_never_called_test_money() -> None:
    for network in (BASE, resolve_network("eip155:1"), resolve_network("eip155:8453")):
        assert not network.pays_test_money
        usdc = BASE.usdc
        assert usdc is not None
        offer = Offer(network, usdc, PAYEE, "https://pay.example")
        request = _request(network.caip2, usdc.address)
        assert "test money" not in payment_sentence(request, offer)
        assert "test money" not in human_text(request, offer, now=1000.0)
        assert "test money" not in money_note(network, demo=False)[0]


def test_a_known_testnet_says_test_money() -> None:
    usdc = BASE_SEPOLIA.usdc
    assert usdc is not None
    offer = Offer(BASE_SEPOLIA, usdc, PAYEE, "https://pay.example")
    text = human_text(_request(BASE_SEPOLIA.caip2, usdc.address), offer, now=1000.0, error="late")
    assert text.splitlines()[1] == "This is test money on Base Sepolia, a test network: it has no value."
    relabelled = dataclasses.replace(BASE_SEPOLIA, label="Sepolia")
    assert relabelled.is_known_testnet


# -- one URL rule for every service URL; secrets never quoted ------------------------------------

BAD_URLS = [
    ("gopher://node.example/" + SECRET, "must start with http:// or https://"),
    ("ws://node.example/" + SECRET, "must start with http:// or https://"),
    ("node.example/" + SECRET, "must start with http:// or https://"),
    ("http:/" + SECRET, "must start with http:// or https://"),
    ("https://", "names no host"),
    ("https://:8545/" + SECRET, "names no host"),
    ("https://node.example:port/" + SECRET, "its host or port cannot be read"),
    ("https://node.example:99999/" + SECRET, "its host or port cannot be read"),
    ("https://[::1/" + SECRET, "its host or port cannot be read"),
    ("https://node example/" + SECRET, "spaces, control characters"),
    ("https://node.example/\n" + SECRET, "spaces, control characters"),
    ("https://node.example\\@evil.example/" + SECRET, "backslashes"),
    ("https://no<de>.example/" + SECRET, "neither a DNS name nor an IP address"),
    ("https://node..example/" + SECRET, "neither a DNS name nor an IP address"),
    ("https://node.example/#" + SECRET, "#fragment"),
    ("", "must be a URL"),
]


@pytest.mark.parametrize(("url", "words"), BAD_URLS)
def test_a_bad_service_url_is_refused_without_being_quoted(url: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as raised:
        service_url(url, what="SOME_URL")
    assert str(raised.value).startswith("SOME_URL") and SECRET not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8545",
        "https://base-mainnet.g.alchemy.com/v2/" + SECRET,
        "https://user:" + SECRET + "@node.example/rpc?key=1",
        "http://[::1]:8545/",
        "HTTPS://Node.Example",
        "http://localhost.:8545",
    ],
)
def test_a_good_service_url_is_kept(url: str) -> None:
    assert service_url(f" {url} ", what="X") == url


def _local(**changes: str) -> dict[str, str]:
    env = {
        "X402_SETTLEMENT": "local",
        "X402_RPC_URL": "http://127.0.0.1:1",
        "X402_SETTLEMENT_KEY": GAS_KEY,
        "X402_PAY_TO": PAYEE,
        "X402_NETWORK": "base",
        "X402_LEDGER_URL": ":memory:",
    }
    return {**env, **changes}


def _facilitator(**changes: str) -> dict[str, str]:
    base = {"X402_SETTLEMENT": "facilitator", "X402_FACILITATOR_URL": "https://facilitator.example"}
    return _local(**{**base, **changes})


URL_VARIABLES = [
    (_local, "X402_RPC_URL"),
    (_facilitator, "X402_RPC_URL"),  # the example of the issue: it used to pass in facilitator mode
    (_facilitator, "X402_FACILITATOR_URL"),
    (_facilitator, "X402_SOLANA_FACILITATOR_URL"),
]


@pytest.mark.parametrize(("mode", "variable"), URL_VARIABLES)
@pytest.mark.parametrize(("url", "words"), BAD_URLS[:-1])
def test_every_url_setting_is_checked_at_start(mode: object, variable: str, url: str, words: str) -> None:
    env = mode(**{variable: url})  # type: ignore[operator]
    if variable == "X402_SOLANA_FACILITATOR_URL":
        env["X402_SOLANA_PAY_TO"] = PLAUSIBLE["X402_SOLANA_PAY_TO"]
    with pytest.raises(ConfigurationError, match=words) as raised:
        settings_from_env(env)
    assert str(raised.value).startswith(variable) and SECRET not in str(raised.value)


@pytest.mark.parametrize(("url", "words"), BAD_URLS[:-1])
def test_the_constructors_that_take_urls_check_them(url: str, words: str) -> None:
    for make in (
        lambda: FacilitatorSettlement(url, network="base"),
        lambda: FacilitatorSettlement("https://facilitator.example", network="base", rpc_url=url),
        lambda: LocalSettlement.from_rpc(url, GAS_KEY, network="base"),
    ):
        with pytest.raises(ConfigurationError, match=words) as raised:
            make()
        assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    ("env", "variable", "secret"),
    [
        (_local(X402_SETTLEMENT_KEY="0x" + "zz" * 32), "X402_SETTLEMENT_KEY", "zz" * 32),
        (_local(X402_SETTLEMENT_KEY=SECRET), "X402_SETTLEMENT_KEY", SECRET),
        (_local(X402_SETTLEMENT_KEY="0x" + "00" * 32), "X402_SETTLEMENT_KEY", "00" * 32),
        (_facilitator(X402_FACILITATOR_TOKEN=f"{SECRET} {SECRET}"), "X402_FACILITATOR_TOKEN", SECRET),
        (_facilitator(X402_FACILITATOR_TOKEN=f"{SECRET}\u00e9"), "X402_FACILITATOR_TOKEN", SECRET),
        (_local(X402_RPC_URL=f"gopher://{SECRET}@node.example"), "X402_RPC_URL", SECRET),
        (_local(X402_LEDGER_URL=f"mysql://root:{SECRET}@db/x"), "X402_LEDGER_URL", SECRET),
        (_local(X402_LEDGER_URL=f"sqlite://{SECRET}@host/x"), "X402_LEDGER_URL", SECRET),
    ],
)
def test_a_bad_secret_is_named_and_never_quoted(env: dict[str, str], variable: str, secret: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Payments.from_env(env)
    assert variable in str(raised.value) and secret not in str(raised.value)


@pytest.mark.parametrize(
    "secret",
    [
        f"not a key {SECRET}",
        base64.b64encode(SECRET.encode() * 4).decode(),
        base64.b64encode(b"x" * 64).decode(),
        f"-----BEGIN EC PRIVATE KEY-----\n{SECRET}\n-----END EC PRIVATE KEY-----\n",
    ],
)
def test_a_bad_cdp_secret_names_its_variable_and_is_never_quoted(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_API_KEY_ID", "organizations/x/apiKeys/y")
    monkeypatch.setenv("CDP_API_KEY_SECRET", secret)
    with pytest.raises(ConfigurationError) as raised:
        CdpAuth.from_env()
    message = str(raised.value)
    assert "CDP_API_KEY_SECRET" in message and secret.strip() not in message and SECRET not in message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("gopher://shop.example", "must start with https://"),
        ("https://shop example", "spaces, control characters"),
        ("https://shop.example\\@evil.example", "backslashes"),
        ("https://sh<o>p.example", "neither a DNS name nor an IP address"),
        ("https://shop.example:port", "is not a URL"),
        ("https://shop.example/?next=1", "must not carry a user, a query or a fragment"),
    ],
)
def test_the_public_url_is_checked_at_start(url: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as raised:
        settings_from_env({"X402_PUBLIC_URL": url})
    assert str(raised.value).startswith("X402_PUBLIC_URL")


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"X402_SOLANA_PAY_TO": "not-base58!"}, "X402_SOLANA_PAY_TO"),
        ({"X402_SOLANA_PAY_TO": PAYEE}, "X402_SOLANA_PAY_TO"),  # an EVM address is not a Solana one
        (
            {"X402_SOLANA_PAY_TO": PLAUSIBLE["X402_SOLANA_PAY_TO"], "X402_SOLANA_NETWORK": "mars"},
            "X402_SOLANA_NETWORK",
        ),
        ({"X402_SETTLEMENT": "cloud"}, "X402_SETTLEMENT"),
        ({"X402_LEDGER_URL": "ftp://ledger.example"}, "X402_LEDGER_URL"),
        ({"X402_LEDGER_URL": "sqlite:///tmp/ledger.sqlite?mode=ro"}, "X402_LEDGER_URL"),
        ({"X402_PAGE_PORT": "eighty"}, "X402_PAGE_PORT"),
    ],
)
def test_every_other_setting_error_names_its_variable(changes: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings_from_env({"X402_SETTLEMENT": "devchain", "X402_LEDGER_URL": ":memory:", **changes})
    assert str(raised.value).startswith(variable)
