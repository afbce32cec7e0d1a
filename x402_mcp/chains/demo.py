"""`x402-mcp demo`: the whole payment story on the embedded chain, printed step by step."""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import anyio
from eth_account import Account
from mcp import Client
from mcp.server import MCPServer
from mcp_types import CallToolResult, TextContent

from ..client.payer import payment_meta, read_challenge, sign_payment
from ..core.challenge import META_HOSTED_URL, META_PAYMENT_RESPONSE
from ..core.money import format_usd
from ..frameworks.payments import Payments
from ..gate.paid import paid
from .devchain import DevChain


def build_server(payments: Payments) -> MCPServer[Any]:
    server = MCPServer("research", extensions=[payments], log_level="WARNING")

    @server.tool()
    def ping() -> str:
        """A free tool: answers pong."""
        return "pong"

    @server.tool()
    @paid(price="0.05", description="one research answer")
    async def research_query(question: str) -> str:
        """Answer a research question."""
        return f"Research answer to {question!r}: the literature agrees it depends."

    return server


PAGE_LINK = "<payment page link>"


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def _blocks(result: CallToolResult) -> tuple[str, str]:
    """A challenge's two text blocks: the PaymentRequired JSON, and the words for people."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    return texts[0], "\n".join(texts[1:])


def _pretty_json(text: str) -> str:
    return json.dumps(json.loads(text), indent=2)


def _without_link(text: str, hosted: str) -> str:
    """`text` with the demo's page link replaced: that page closes when the demo ends."""
    return text.replace(hosted, PAGE_LINK) if hosted else text


async def _story(chain: DevChain, ledger_path: Path) -> int:
    payee = Account.create().address
    payer = chain.new_account(usdc="10")
    payments = Payments(
        pay_to=payee, network=chain.network, settlement=chain.settlement(), ledger=str(ledger_path)
    )
    server = build_server(payments)
    say = print
    say(f"x402-mcp demo: a paid MCP tool on an embedded EVM chain ({chain.network})")
    say(f"  USDC token  {chain.usdc}")
    say(f"  payee       {payee}")
    say(f"  payer       {payer.address} (funded with 10 USDC, no ETH needed)\n")
    before = chain.balance_of(payer.address), chain.balance_of(payee)

    async with Client(server) as client:
        free = await client.call_tool("ping", {})
        say(f"1. A free tool runs as usual: ping -> {_text(free)!r}\n")

        question = {"question": "Is x402 ready for MCP?"}
        unpaid = await client.call_tool("research_query", question)
        required = read_challenge(unpaid)
        option = required.accepts[0]
        hosted = str((unpaid.meta or {}).get(META_HOSTED_URL) or "")
        for_machines, for_people = _blocks(unpaid)
        say("2. An unpaid call of research_query gets a payment challenge (isError: true) in two parts.")
        say("   For machines, the x402 v2 PaymentRequired as JSON:")
        say(textwrap.indent(_without_link(_pretty_json(for_machines), hosted), "     "))
        say("   For people, the same in words:")
        say(textwrap.indent(_without_link(for_people, hosted), "     "))
        say(
            f"   {PAGE_LINK} stands for the link to a payment page that this demo serves only while it\n"
            "   runs, so it is not printed. `x402-mcp serve textkit` serves one that stays open.\n"
        )

        payment = sign_payment(payer, required)
        say("3. The agent signs an EIP-3009 transfer authorization and retries with _meta['x402/payment']")
        result = await client.call_tool("research_query", question, meta=payment_meta(payment))
        receipt = (result.meta or {}).get(META_PAYMENT_RESPONSE, {})
        say(f"   result: {_text(result)}")
        say(f"   settled on chain in transaction {receipt.get('transaction')}\n")

        after = chain.balance_of(payer.address), chain.balance_of(payee)
        say("4. Balances (USDC):")
        say(f"   payer {format_usd(before[0])} -> {format_usd(after[0])}")
        say(f"   payee {format_usd(before[1])} -> {format_usd(after[1])}\n")

        replay = await client.call_tool("research_query", question, meta=payment_meta(payment))
        say("5. Replaying the same payment is refused:")
        reason = next(line for line in _text(replay).splitlines() if "not accepted" in line)
        say(textwrap.indent(reason, "     "))
        final = chain.balance_of(payer.address), chain.balance_of(payee)

    price = int(option.amount)
    story_holds = (
        not free.is_error
        and unpaid.is_error
        and not result.is_error
        and replay.is_error
        and after == (before[0] - price, before[1] + price)
        and final == after
    )
    say(
        "\nThe story holds: paid once, ran once, replay refused."
        if story_holds
        else "\nSomething went wrong."
    )
    return 0 if story_holds else 1


def run_demo() -> int:
    chain = DevChain()
    with tempfile.TemporaryDirectory(prefix="x402-mcp-demo-") as folder:
        return anyio.run(_story, chain, Path(folder) / "ledger.sqlite")
