"""Where the link points, `Payments.from_env()`, and the URL-elicitation offer."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitRequestParams, ElicitResult

from tests.page.conftest import Store, connected, http, link_of
from x402_mcp import ConfigurationError, Payments
from x402_mcp.devchain import DevChain

pytestmark = pytest.mark.anyio


async def test_a_stdio_style_server_links_the_side_port_it_bound(store: Store) -> None:
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        assert url.startswith("http://127.0.0.1:") and store.payments.link.url is not None
        assert url.startswith(store.payments.link.url)
        assert (await web.get(url, headers={"Accept": "text/html"})).status_code == 200


async def test_a_taken_page_port_falls_back_to_a_free_one(page_chain: DevChain, tmp_path: Any) -> None:
    from tests.page.conftest import build_store
    from x402_mcp.serving import _bind

    taken = _bind(0)
    port = taken.getsockname()[1]
    try:
        store = build_store(page_chain, tmp_path / "l.sqlite", page_port=port)
        async with connected(store) as client:
            _, url = link_of(await client.call_tool("answer", {"question": "q"}))
    finally:
        taken.close()
    assert url.startswith("http://127.0.0.1:") and f":{port}/" not in url


async def test_an_explicit_public_url_is_used_as_is(page_chain: DevChain, tmp_path: Any) -> None:
    from tests.page.conftest import build_store

    store = build_store(page_chain, tmp_path / "l.sqlite", public_url="https://pay.example.com/")
    async with connected(store) as client:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
    assert url.startswith("https://pay.example.com/pay/pr_") and store.payments.link.url is None


async def test_url_elicitation_offers_the_link_and_the_tool_error_stays(store: Store) -> None:
    offered: list[ElicitRequestParams] = []

    async def on_elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        offered.append(params)
        return ElicitResult(action="accept")

    async with Client(store.server, mode="legacy", elicitation_callback=on_elicit) as client:
        result = await client.call_tool("answer", {"question": "q"})
    request_id, url = link_of(result)
    assert len(offered) == 1
    dumped = offered[0].model_dump(by_alias=True)
    assert dumped["mode"] == "url" and dumped["url"] == url and dumped["elicitationId"] == request_id
    assert "$0.05" in dumped["message"]


def test_from_env_defaults_to_an_offline_devchain_with_the_demo_wallet(tmp_path: Any) -> None:
    payments = Payments.from_env(
        {"X402_LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite'}", "X402_PAGE_PORT": "0"}
    )
    assert isinstance(payments.demo_chain, DevChain)
    assert payments.network.caip2 == payments.demo_chain.network
    assert payments.link.page_port == 0 and payments.public_url is None


def test_from_env_local_settlement_reads_network_and_payee(tmp_path: Any) -> None:
    payments = Payments.from_env(
        {
            "X402_SETTLEMENT": "local",
            "X402_RPC_URL": "http://127.0.0.1:1",
            "X402_SETTLEMENT_KEY": "0x" + "11" * 32,
            "X402_PAY_TO": "0x000000000000000000000000000000000000dEaD",
            "X402_NETWORK": "base-sepolia",
            "X402_PUBLIC_URL": "https://pay.example.com",
            "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite'}",
        }
    )
    assert payments.network.caip2 == "eip155:84532" and payments.demo_chain is None
    assert payments.public_url == "https://pay.example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"X402_SETTLEMENT": "local"}, "X402_RPC_URL, X402_SETTLEMENT_KEY, X402_PAY_TO"),
        ({"X402_SETTLEMENT": "cloud"}, "not one of: devchain, local"),
        ({"X402_PAGE_PORT": "http"}, "not a port number"),
    ],
)
def test_from_env_names_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Payments.from_env(env)
