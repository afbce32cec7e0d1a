"""The default ledger is per server: its file follows the server's name and identity, so two
unrelated servers on one machine never share one by accident; `x402-mcp ledger` finds them."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from eth_account import Account

from tests.gate.conftest import new_server
from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.cli.main import main
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.ledger.location import ledger_directory, safe_name, server_ledger_path

PAYEE = Account.create().address


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("X402_LEDGER_URL", raising=False)
    return tmp_path / "data" / "x402-mcp" / "ledgers"


def installed(chain: DevChain, framework: str, name: str, pay_to: str = PAYEE) -> Path:
    payments = Payments(pay_to=pay_to, network=chain.network, settlement=chain.settlement())
    new_server(framework, name, payments)
    assert isinstance(payments.ledger, SQLiteLedger)
    return Path(payments.ledger.path)


def test_two_differently_named_servers_get_different_default_files(
    gate_chain: DevChain, framework: str, data_home: Path
) -> None:
    alpha = installed(gate_chain, framework, "alpha")
    beta = installed(gate_chain, framework, "beta")

    assert alpha != beta
    assert alpha.parent == beta.parent == data_home
    assert alpha.name.startswith("alpha-") and beta.name.startswith("beta-")
    # The same server started again finds its own file.
    assert installed(gate_chain, framework, "alpha") == alpha


def test_one_name_with_another_payee_gets_another_file(gate_chain: DevChain, data_home: Path) -> None:
    assert installed(gate_chain, "mcpserver", "shop") != installed(
        gate_chain, "mcpserver", "shop", pay_to=Account.create().address
    )


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "a/b\\c", "..", "with\x00nul", "", "CON", "é" * 300, "shop.sqlite"]
)
def test_any_server_name_makes_a_safe_file_name_in_the_ledger_directory(name: str, data_home: Path) -> None:
    path = server_ledger_path(name, pay_to=PAYEE, network="eip155:84532", asset=PAYEE)

    assert path.parent == ledger_directory() == data_home.absolute()
    assert path.suffix == ".sqlite" and path.name.count(".") == 1
    assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in path.name) and len(path.name) < 80
    assert safe_name(name) and not safe_name(name).startswith(("-", "_"))


def test_names_that_read_alike_once_made_safe_still_get_their_own_files(data_home: Path) -> None:
    one = server_ledger_path("my shop", pay_to=PAYEE, network="eip155:84532", asset=PAYEE)
    other = server_ledger_path("my/shop", pay_to=PAYEE, network="eip155:84532", asset=PAYEE)

    assert one != other and safe_name("my shop") == safe_name("my/shop")


def test_a_named_ledger_is_shared_on_purpose(
    gate_chain: DevChain, data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X402_LEDGER_URL", f"sqlite://{tmp_path / 'shared.sqlite'}")

    assert installed(gate_chain, "fastmcp", "alpha") == installed(gate_chain, "mcpserver", "beta")
    assert installed(gate_chain, "mcpserver", "beta") == tmp_path / "shared.sqlite"


def test_an_explicit_ledger_is_kept_on_install(gate_chain: DevChain, data_home: Path, tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "mine.sqlite")
    payments = Payments(
        pay_to=PAYEE, network=gate_chain.network, settlement=gate_chain.settlement(), ledger=ledger
    )
    new_server("mcpserver", "alpha", payments)

    assert payments.ledger is ledger and payments.collector.ledger is ledger
    assert payments.sweeper.ledger is ledger and payments.reconciler.ledger is ledger


@pytest.mark.anyio
async def test_installing_moves_every_part_to_the_servers_own_file(
    gate_chain: DevChain, data_home: Path
) -> None:
    payments = Payments(pay_to=PAYEE, network=gate_chain.network, settlement=gate_chain.settlement())
    new_server("mcpserver", "alpha", payments)
    await payments.open()
    try:
        ledger = payments.ledger
        assert isinstance(ledger, SQLiteLedger) and Path(ledger.path).name.startswith("alpha-")
        assert payments.collector.ledger is ledger and payments.sweeper.ledger is ledger
        assert payments.reconciler.ledger is ledger
        assert (data_home / Path(ledger.path).name).exists()
    finally:
        await payments.ledger.close()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["ledger", *argv])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def test_the_ledger_command_finds_a_servers_file_by_its_name(
    gate_chain: DevChain, data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def start_and_stop(name: str) -> None:
        payments = Payments(pay_to=PAYEE, network=gate_chain.network, settlement=gate_chain.settlement())
        new_server("mcpserver", name, payments)
        await payments.open()
        await payments.ledger.close()

    for name in ("alpha", "beta"):
        anyio.run(start_and_stop, name)

    listed_status, listed = run_cli(capsys, "files")
    ambiguous_status, ambiguous = run_cli(capsys)
    alpha_status, alpha = run_cli(capsys, "--server", "alpha")
    missing_status, missing = run_cli(capsys, "--server", "gamma")

    assert (
        listed_status == 0 and "2 server ledger file(s)" in listed and "alpha" in listed and "beta" in listed
    )
    assert ambiguous_status == 2 and "several default ledger files" in ambiguous and "alpha-" in ambiguous
    assert alpha_status == 0 and "0 payment request(s)" in alpha
    assert missing_status == 2 and "no server called 'gamma'" in missing
