"""Replica processes for tests: start, kill and restart real streamable-HTTP servers.

Each replica is `paid_server.py` in a subprocess of its own, on a free loopback
port, sharing one PostgreSQL schema (the ledger) and one anvil chain, with a
gas account of its own (replicas sharing one would race for its nonce).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ..chains import AnvilChain

SERVER_SCRIPT = Path(__file__).with_name("paid_server.py")
ROOT = SERVER_SCRIPT.parents[2]
POSTGRES_URL = os.environ.get("X402_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_or_skip() -> str:
    """The PostgreSQL URL, or skip (fail when X402_REQUIRE_POSTGRES=1)."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except Exception as exc:
        reason = f"PostgreSQL is unreachable at $X402_POSTGRES_URL ({type(exc).__name__})"
        if os.environ.get("X402_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_URL


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new PostgreSQL schema name, dropped (with everything in it) afterwards."""
    import psycopg

    schema = f"x402_replicas_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Replica:
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """Replicas of one paid server on one ledger (a PostgreSQL schema) and one chain."""

    chain: AnvilChain
    ledger_url: str
    schema: str | None
    pay_to: str
    runs: Path
    folder: Path
    replicas: list[Replica] = field(default_factory=list)

    def add(self, *, crash: str = "", grace: float = 300, lease: int = 300) -> Replica:
        gas = Account.create()
        self.chain.fund_eth(gas.address, 10**18)
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REPLICA_PORT": str(port),
            "REPLICA_LEDGER_URL": self.ledger_url,
            "REPLICA_RPC_URL": self.chain.rpc_url,
            "REPLICA_GAS_KEY": gas.key.hex(),
            "REPLICA_TOKEN": self.chain.usdc,
            "REPLICA_CHAIN_ID": str(self.chain.network_info.chain_id),
            "REPLICA_PAY_TO": self.pay_to,
            "REPLICA_RUNS": str(self.runs),
            "REPLICA_CRASH": crash,
            "REPLICA_GRACE": str(grace),
            "REPLICA_LEASE": str(lease),
        }
        if self.schema:
            env["REPLICA_LEDGER_SCHEMA"] = self.schema
        replica = Replica(port, env, self.folder / f"replica-{port}.log")
        self.replicas.append(replica)
        return replica

    def start(self, *replicas: Replica, timeout: float = 60.0) -> None:
        for replica in replicas:
            with replica.log.open("ab") as log:
                replica.process = subprocess.Popen(
                    [sys.executable, str(SERVER_SCRIPT)],
                    env=replica.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        deadline = time.monotonic() + timeout
        for replica in replicas:
            while not _listening(replica.port):
                assert replica.process is not None
                if replica.process.poll() is not None:
                    raise RuntimeError(f"replica {replica.port} exited: {replica.log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica {replica.port} did not listen within {timeout} s")
                time.sleep(0.05)

    def restart(self, replica: Replica, **changes: str) -> None:
        """Start `replica` again (after it died), with `changes` to its environment."""
        replica.env.update(changes)
        self.start(replica)

    def wait_dead(self, replica: Replica, timeout: float = 30.0) -> int:
        assert replica.process is not None
        return replica.process.wait(timeout=timeout)

    def stop(self) -> None:
        for replica in self.replicas:
            process = replica.process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def run_lines(self) -> list[str]:
        return self.runs.read_text().splitlines() if self.runs.exists() else []


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def cluster(chain: AnvilChain, folder: Path, **kwargs: Any) -> Iterator[Cluster]:
    url = postgres_or_skip()
    with fresh_schema(url) as schema:
        running = Cluster(chain, url, schema, Account.create().address, folder / "runs.txt", folder, **kwargs)
        try:
            yield running
        finally:
            running.stop()
