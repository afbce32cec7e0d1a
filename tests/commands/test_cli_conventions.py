"""One CLI: `--version`, a description and defaults in every `--help`, one exit-code convention
(0 ok, 1 the operation failed, 2 usage or configuration), errors that say what to do, and no
read command that creates state. Each through a real subprocess, as a user runs it."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from x402_mcp.chains import devnet as devnet_module
from x402_mcp.cli.main import HelpFormatter, build_parser
from x402_mcp.errors import X402MCPError

from ..chains import anvil_or_skip

CLI = [sys.executable, "-m", "x402_mcp.cli.main"]


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd
    )


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        yield held.getsockname()[1]


def test_version_names_the_installed_release() -> None:
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"x402-mcp {version('mcp-x402')}"


def test_the_top_level_help_documents_the_exit_codes() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for line in (
        "exit status:",
        "0    it worked",
        "1    the operation failed",
        "2    usage or configuration",
    ):
        assert line in done.stdout


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_help_has_a_description_defaults_and_the_exit_codes(name: str) -> None:
    parser = subcommands()[name]
    done = cli(name, "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert parser.description and " ".join(parser.description.split()) in text
    assert "exit status:" in done.stdout
    formatter = HelpFormatter(prog=name)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            shown = formatter._expand_help(action)
            assert "default" in shown, f"{name} {action.option_strings} hides its default {action.default!r}"
            assert " ".join(shown.split()) in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve"], "the following arguments are required: server"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["devnet", "--port", "70000"], "expected a whole number from 0 to 65535"),
        (["page", "--port", "0"], "expected a whole number from 1 to 65535"),
        (
            ["facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base", "--port", "-1"],
            "whole number",
        ),
        (["serve", "nope"], "no sample server 'nope' (known: mathlab, passphrase, textkit)"),
        (["claude-config", "nope"], "no sample server 'nope'"),
        (["bundle", "nope"], "no sample server 'nope'"),
        (["bundle", "missing.py"], "'missing.py' is not a file"),
        (
            ["bundle", "mathlab", "--wheel", "gone/mcp_x402-0.1.0-py3-none-any.whl"],
            "is not a file; give the path",
        ),
    ],
)
def test_usage_and_configuration_errors_exit_2_and_say_what_to_do(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_ledger_refuses_a_mistyped_path_and_creates_nothing(tmp_path: Path) -> None:
    for url in (str(tmp_path / "ledgr.sqlite"), f"sqlite://{tmp_path / 'sub' / 'ledgr.sqlite'}"):
        done = cli("ledger", "--url", url)
        assert done.returncode == 2, done.stderr
        assert "there is no ledger file at" in done.stderr and "(--url)" in done.stderr
        assert "never creates one" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_ledger_refuses_a_missing_default_ledger_and_creates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "X402_LEDGER_URL"}
    env["XDG_DATA_HOME"] = str(tmp_path)
    for view in ("list", "payments", "pending"):
        done = cli("ledger", view, env=env)
        assert done.returncode == 2, done.stderr
        # No server has a default ledger file there yet (each server has its own).
        assert f"no server has a default ledger in {tmp_path}" in done.stderr and "--url" in done.stderr
    assert list(tmp_path.iterdir()) == []
    done = cli("ledger", env={**env, "X402_LEDGER_URL": f"sqlite://{tmp_path}/x.sqlite"})
    assert done.returncode == 2 and "(X402_LEDGER_URL)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_page_on_a_busy_port_says_what_to_do(taken_port: int, tmp_path: Path) -> None:
    env = {**os.environ, "X402_LEDGER_URL": f"sqlite://{tmp_path}/l.sqlite", "X402_SETTLEMENT": "devchain"}
    done = cli("page", "--port", str(taken_port), env=env)
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}" in done.stderr and "pass another --port" in done.stderr
    assert "Traceback" not in done.stderr


def test_facilitator_on_a_busy_port_says_what_to_do(taken_port: int) -> None:
    env = {**os.environ, "X402_FACILITATOR_KEY": "0x" + "11" * 32, "X402_FACILITATOR_PAY_TO": ""}
    done = cli(
        "facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "eip155:31337",
        "--asset", "0x" + "22" * 20, "--any-payee", "--port", str(taken_port), env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}" in done.stderr and "pass another --port" in done.stderr
    assert "x402 facilitator for" not in done.stderr  # nothing announced that never listened


def test_facilitator_names_the_variable_of_a_bad_key() -> None:
    key = "0x" + "zz" * 32
    env = {**os.environ, "X402_FACILITATOR_KEY": key}
    done = cli("facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base", "--any-payee", env=env)
    assert done.returncode == 2
    assert "X402_FACILITATOR_KEY is not a valid private key" in done.stderr and key not in done.stderr


@pytest.mark.anvil
def test_devnet_on_a_busy_port_says_what_to_do(taken_port: int) -> None:
    anvil_or_skip()
    done = cli("devnet", "--port", str(taken_port))
    assert done.returncode == 2, done.stderr
    assert f"port {taken_port} on 127.0.0.1 is not free" in done.stderr
    assert "choose another port (0: any free port)" in done.stderr
    assert ".log" not in done.stderr


@pytest.mark.anvil
def test_when_anvil_itself_exits_its_own_words_are_quoted(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log is removed when start-up fails, so the error quotes its tail, not its path."""
    anvil_or_skip()
    monkeypatch.setattr(devnet_module, "_require_free_port", lambda port: None)
    with pytest.raises(X402MCPError) as failed:
        devnet_module.Devnet(port=taken_port, accounts=0)
    message = str(failed.value)
    assert message.startswith("anvil exited with status")
    assert "it said:" in message and "ddress already in use" in message
    assert ".log" not in message
