"""A ledger that cannot be used stops the server at start, naming the file and the fix,
instead of failing the first paid call (on both frameworks)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client as FastMCPClient
from fastmcp import FastMCP
from mcp import Client
from mcp.server import MCPServer

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import open_ledger
from x402_mcp.ledger._open import open_checked

pytestmark = pytest.mark.anyio
PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


def corrupt(path: Path) -> Path:
    path.write_bytes(b"this is not an SQLite database\n" * 200)
    return path


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` made unwritable for this process: by mode bits, or (as root, whom they do not
    stop) by the immutable attribute."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
        pytest.skip("running as root on a filesystem without the immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def made_ledger(path: Path) -> None:
    ledger = open_ledger(str(path))
    await ledger.open()
    await ledger.close()


def failure_of(raised: BaseException) -> LedgerError:
    """The LedgerError inside what a client's start raised (task groups wrap it)."""
    pending: list[BaseException] = [raised]
    while pending:
        error = pending.pop()
        if isinstance(error, LedgerError):
            return error
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        for linked in (error.__cause__, error.__context__):
            if linked is not None:
                pending.append(linked)
    raise AssertionError(f"no LedgerError in {raised!r}")


def payments_on(chain: DevChain, path: Path) -> Payments:
    return Payments(PAYEE, chain.network, settlement=chain.settlement(), ledger=str(path), page_port=0)


def mcpserver_with(payments: Payments) -> MCPServer[Any]:
    server = MCPServer("shop", extensions=[payments])

    @server.tool()
    @paid(price="0.05")
    def answer(question: str) -> str:
        return question

    return server


def fastmcp_with(payments: Payments) -> FastMCP[Any]:
    server: FastMCP[Any] = FastMCP("fm-shop")

    @server.tool()
    @paid(price="0.05")
    def answer(question: str) -> str:
        return question

    payments.install(server)
    return server


async def start(framework: str, payments: Payments) -> None:
    if framework == "mcpserver":
        async with Client(mcpserver_with(payments)) as client:
            await client.list_tools()
    else:
        async with FastMCPClient(fastmcp_with(payments)) as client:
            await client.list_tools()


def assert_names_file_and_fix(error: LedgerError, path: Path) -> None:
    assert str(path) in str(error) and "X402_LEDGER_URL" in str(error)


async def test_a_corrupt_ledger_fails_open_checked_with_the_path_and_the_fix(tmp_path: Path) -> None:
    path = corrupt(tmp_path / "ledger.sqlite")
    with pytest.raises(LedgerError, match="not a database") as raised:
        await open_checked(open_ledger(str(path)))
    assert_names_file_and_fix(raised.value, path)


async def test_a_read_only_ledger_fails_open_checked(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    await made_ledger(path)
    with read_only(path), pytest.raises(LedgerError, match="cannot be written") as raised:
        await open_checked(open_ledger(str(path)))
    assert_names_file_and_fix(raised.value, path)
    await open_checked(open_ledger(str(path)))  # writable again: accepted


async def test_memory_and_fresh_ledgers_pass(tmp_path: Path) -> None:
    await open_checked(open_ledger(":memory:"))
    await open_checked(open_ledger(str(tmp_path / "new" / "ledger.sqlite")))


@pytest.mark.parametrize("framework", ["mcpserver", "fastmcp"])
async def test_a_corrupt_ledger_stops_the_server_at_start(
    chain: DevChain, tmp_path: Path, framework: str
) -> None:
    path = corrupt(tmp_path / "ledger.sqlite")
    with pytest.raises(BaseException) as raised:  # noqa: PT011 -- unwrapped below
        await start(framework, payments_on(chain, path))
    assert_names_file_and_fix(failure_of(raised.value), path)


@pytest.mark.parametrize("framework", ["mcpserver", "fastmcp"])
async def test_a_read_only_ledger_stops_the_server_at_start(
    chain: DevChain, tmp_path: Path, framework: str
) -> None:
    path = tmp_path / "ledger.sqlite"
    await made_ledger(path)
    with read_only(path), pytest.raises(BaseException) as raised:  # noqa: PT011 -- unwrapped below
        await start(framework, payments_on(chain, path))
    error = failure_of(raised.value)
    assert "cannot be written" in str(error)
    assert_names_file_and_fix(error, path)


@pytest.mark.parametrize("framework", ["mcpserver", "fastmcp"])
async def test_a_good_ledger_is_opened_at_start_before_any_call(
    chain: DevChain, tmp_path: Path, framework: str
) -> None:
    path = tmp_path / "ledger.sqlite"
    assert not path.exists()
    await start(framework, payments_on(chain, path))  # lists tools only: no paid call
    assert path.exists()
