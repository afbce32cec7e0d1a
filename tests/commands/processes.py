"""Commands run as a user runs them: subprocesses whose output is read line by line, with deadlines."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from web3 import Web3

from x402_mcp.chains.token import UsdcToken

CLI = [sys.executable, "-m", "x402_mcp.cli.main"]


@dataclass
class Running:
    """A command under test: its process, and every line it wrote on stdout and stderr so far."""

    process: subprocess.Popen[str]
    stdout_lines: queue.Queue[str] = field(default_factory=queue.Queue)
    stderr_lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def next_line(self, stream: str = "stdout", *, timeout: float = 60) -> str:
        lines = self.stdout_lines if stream == "stdout" else self.stderr_lines
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line on {stream} within {timeout} s; so far: {self.seen}") from None
        self.seen.append(line)
        return line

    def json(self, *, timeout: float = 60) -> dict[str, Any]:
        """The first stdout line, read as the JSON object a `--json` command prints."""
        line = self.next_line(timeout=timeout)
        assert line, f"the command ended before printing its JSON; output: {self.seen}"
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def wait_for(self, pattern: str, *, stream: str = "stderr", timeout: float = 60) -> re.Match[str]:
        while True:
            line = self.next_line(stream, timeout=timeout)
            assert line, f"{stream} ended before a line matched {pattern!r}; output: {self.seen}"
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 20) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        """Everything it wrote (call after it ended)."""
        rest = [*_drain(self.stdout_lines), *_drain(self.stderr_lines)]
        return "".join(self.seen + rest)


def _drain(lines: queue.Queue[str]) -> Iterator[str]:
    while True:
        try:
            yield lines.get_nowait()
        except queue.Empty:
            return


def _pump(stream: TextIO, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)
    into.put("")  # end of stream


@contextmanager
def running(
    arguments: list[str], env: Mapping[str, str] | None = None, *, cli: Sequence[str] = tuple(CLI)
) -> Iterator[Running]:
    """Run `x402-mcp ARGUMENTS` (of another environment's interpreter with `cli`); kill it
    afterwards if it still runs."""
    process = subprocess.Popen(
        [*cli, *arguments], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    command = Running(process)
    assert process.stdout is not None and process.stderr is not None
    for stream, lines in ((process.stdout, command.stdout_lines), (process.stderr, command.stderr_lines)):
        threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()
    try:
        yield command
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def token_at(info: Mapping[str, Any]) -> UsdcToken:
    """The devnet's USDC as `x402-mcp devnet --json` (or `serve --devnet --json`) describes it."""
    token = info["token"]
    w3 = Web3(Web3.HTTPProvider(info["rpc_url"], request_kwargs={"timeout": 10}))
    owner = info["accounts"][0]["address"]  # only read from: any address will do
    return UsdcToken(w3, token["address"], owner=owner, name=token["name"], version=token["version"])
