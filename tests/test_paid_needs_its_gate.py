"""A `@paid` tool never runs without its gate: every framework, decorator order, sync or
async tool, with no `Payments` at all or one made but never installed; through a real MCP
client session in memory. With the gate, the same tools run once paid."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import FastMCP
from mcp import Client
from mcp.server import MCPServer, Server
from mcp.types import Tool

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.frameworks._fastmcp_seam import lowlevel_server
from x402_mcp.gate.guard import gate_passed, inside_gate

pytestmark = pytest.mark.anyio

FRAMEWORKS = ("mcpserver", "fastmcp")
ORDERS = ("paid_below_tool", "paid_above_tool")
KINDS = ("sync", "async")
MISSING = ("no_payments", "payments_not_installed")
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"

AnyServer = MCPServer[Any] | FastMCP[Any]


def bare_server(framework: str, **options: Any) -> AnyServer:
    return MCPServer("ungated", **options) if framework == "mcpserver" else FastMCP("ungated", **options)


def connectable(server: AnyServer) -> MCPServer[Any] | Server[Any]:
    return server if isinstance(server, MCPServer) else lowlevel_server(server)


def add_tool(server: AnyServer, order: str, kind: str, runs: list[str], *, priced: bool = True) -> None:
    """`report` on `server`: typed arguments and result, a docstring, @paid in `order`."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        return paid(price="0.05", description="one report")(fn) if priced else fn

    if kind == "sync":

        def report(pages: int, title: str = "untitled") -> dict[str, int]:
            """A report of some pages."""
            runs.append(title)
            return {"pages": pages}

    else:

        async def report(pages: int, title: str = "untitled") -> dict[str, int]:  # type: ignore[misc]
            """A report of some pages."""
            runs.append(title)
            return {"pages": pages}

    if order == "paid_below_tool":
        server.tool()(mark(report))
    else:
        mark(server.tool()(report))


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


@pytest.fixture
def payments(chain: DevChain, tmp_path: Path) -> Iterator[Payments]:
    snapshot = chain.snapshot()
    yield Payments(
        pay_to=PAY_TO,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        page_port=0,
    )
    chain.revert(snapshot)


async def listed(server: AnyServer) -> Tool:
    async with Client(connectable(server)) as client:
        (tool,) = (await client.list_tools()).tools
    return tool


@pytest.mark.parametrize("missing", MISSING)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_paid_tool_without_its_gate_refuses_and_names_the_fix(
    framework: str,
    order: str,
    kind: str,
    missing: str,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    if missing == "payments_not_installed":
        request.getfixturevalue("payments")  # made, configured, never put on the server
    runs: list[str] = []
    server = bare_server(framework)
    add_tool(server, order, kind, runs)
    free_twin = bare_server(framework)
    add_tool(free_twin, order, kind, [], priced=False)

    # tools/list is exactly what the framework lists for the same function without @paid.
    assert (await listed(server)).model_dump() == (await listed(free_twin)).model_dump()

    caplog.set_level(logging.INFO)
    async with Client(connectable(server)) as client:
        for attempt in range(3):
            result = await client.call_tool("report", {"pages": 3, "title": f"try {attempt}"})
            assert result.is_error, "a paid tool ran (or answered) without its gate"
            assert result.structured_content is None
            text = " ".join(getattr(part, "text", "") for part in result.content)
            assert "MCPServer(..., extensions=[payments])" in text and "payments.install(mcp)" in text
            assert "nothing was charged" in text
    assert runs == [], "the tool body ran without its gate"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("x402_mcp")]
    assert len(errors) == 1, "the refusal is logged once per tool, at ERROR"
    assert "'report'" in errors[0].getMessage() and "payments.install(mcp)" in errors[0].getMessage()
    # The framework's own error log does not repeat it per call either.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and not r.name.startswith("x402")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_with_its_gate_the_same_tool_is_priced_and_runs_once_paid(
    framework: str, order: str, kind: str, payments: Payments, chain: DevChain
) -> None:
    runs: list[str] = []
    if framework == "mcpserver":
        server: AnyServer = MCPServer("gated", extensions=[payments])
    else:
        server = FastMCP("gated")
        payments.install(server)
    add_tool(server, order, kind, runs)
    payer = chain.new_account(usdc="1")
    async with Client(connectable(server)) as client:
        tool = (await client.list_tools()).tools[0]
        assert "Paid tool: $0.05 per call" in (tool.description or "")
        challenge = await client.call_tool("report", {"pages": 3})
        assert challenge.is_error and runs == []
        payment = sign_payment(payer, read_challenge(challenge))
        result = await client.call_tool("report", {"pages": 3}, meta={"x402/payment": payment.dump()})
        assert not result.is_error, result.content
        assert result.structured_content == {"pages": 3}
    assert runs == ["untitled"]


async def test_fastmcp_shows_the_fix_even_when_it_masks_error_details() -> None:
    runs: list[str] = []
    server = bare_server("fastmcp", mask_error_details=True)
    add_tool(server, "paid_above_tool", "async", runs)
    async with Client(connectable(server)) as client:
        result = await client.call_tool("report", {"pages": 1})
    assert result.is_error and "payments.install(mcp)" in str(result.content)
    assert runs == []


def test_called_directly_outside_a_gate_a_paid_function_refuses_too() -> None:
    @paid(price="0.05")
    def report(pages: int) -> int:
        return pages

    assert not inside_gate()
    with pytest.raises(Exception, match=r"extensions=\[payments\]"):
        report(2)
    # Inside a run the gate authorised (the gate alone sets this), it is the function.
    with gate_passed(object()):
        assert inside_gate() and report(2) == 2
    assert not inside_gate()


def test_a_tool_takes_one_paid() -> None:
    from x402_mcp.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="@paid already"):

        @paid(price="0.05")
        @paid(price="0.01")
        def report() -> str:
            return ""


def test_the_heap_is_searched_only_for_a_function_something_else_holds() -> None:
    from x402_mcp.gate import guard

    # Measured on this interpreter: a function @paid is written right above is held by no one
    # else, so no registration can hold it; a registered one is looked for (the tests above).
    assert guard._unheld is not None
    registry = []

    def held() -> None: ...

    registry.append(held)
    seen: list[int] = []
    guard._probe = seen
    try:
        paid(price="1")(held)

        @paid(price="1")
        def fresh() -> None: ...

    finally:
        guard._probe = None
    assert seen[0] > guard._unheld and seen[1] == guard._unheld


def test_paid_imported_past_the_doors_fails_closed_above_a_tool_decorator() -> None:
    # The gate names no framework: the doors register how to reach a registration. A @paid
    # taken from the gate's own module, with the doors never loaded, cannot reach the tool
    # the framework registered bare, so it refuses to start instead of leaving it free.
    probe = (
        "import sys\n"
        "from mcp.server import MCPServer\n"
        "from x402_mcp.errors import ConfigurationError\n"
        "from x402_mcp.gate.paid import paid\n"
        "assert 'x402_mcp.frameworks' not in sys.modules\n"
        "server = MCPServer('s')\n"
        "try:\n"
        "    @paid(price='0.01')\n"
        "    @server.tool()\n"
        "    async def tool() -> str:\n"
        "        return 'ran'\n"
        "except ConfigurationError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "from x402_mcp import paid" in done.stdout


def test_the_lazy_paid_loads_the_doors_that_reach_a_registration() -> None:
    probe = "import sys, x402_mcp\nx402_mcp.paid\nprint('x402_mcp.frameworks' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
