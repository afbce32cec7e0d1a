"""The second virtual environment with the official x402 MCP package, and its processes.

`x402.mcp` needs the MCP SDK 1.x and we need 2.x, so the official side runs
in `.venv-official/` (built once per machine with uv from requirements.txt and
rebuilt when the pins change) as subprocesses over streamable HTTP on loopback.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / ".venv-official"
REQUIREMENTS = HERE / "requirements.txt"
SERVER_SCRIPT = HERE / "official_server.py"
CLIENT_SCRIPT = HERE / "official_client.py"
REQUIRE_VARIABLE = "X402_REQUIRE_OFFICIAL_MCP"


class Unavailable(Exception):
    """The official environment could not be built; the message says why."""


def official_python(*, timeout: float = 600) -> Path:
    """The interpreter of the official environment, building it first if needed.

    Raises:
        Unavailable: no uv, or the build failed (no registry access, …).
    """
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    uv = shutil.which("uv")
    lock_path = ROOT / ".venv-official.lock"
    with lock_path.open("w") as lock:
        # One build at a time, also across parallel test processes.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == digest:
            return python
        if uv is None:
            raise Unavailable("uv is not on PATH, so the official x402 environment cannot be built")
        # --no-config: our pyproject's constraints pin mcp 2.x, which this environment must not get.
        steps = [
            [uv, "venv", "--no-config", "--quiet", "--clear", "--python", "3.11", str(VENV)],
            [
                uv,
                "pip",
                "install",
                "--no-config",
                "--quiet",
                "--python",
                str(python),
                "-r",
                str(REQUIREMENTS),
            ],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise Unavailable(f"building {VENV.name} failed: {exc}") from exc
            if done.returncode != 0:
                raise Unavailable(f"building {VENV.name} failed: {done.stderr.strip()[-800:]}")
        stamp.write_text(digest)
    return python


@asynccontextmanager
async def official_server(
    python: Path, env: Mapping[str, str], log_dir: Path, *, start_timeout: float = 30.0
) -> AsyncIterator[str]:
    """Run the official paid server; yields its MCP URL (`http://127.0.0.1:PORT/mcp`)."""
    port_file = log_dir / "official-server.port"
    port_file.unlink(missing_ok=True)
    log = (log_dir / "official-server.log").open("wb")
    process = await anyio.open_process(
        [str(python), str(SERVER_SCRIPT), str(port_file)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**_base_env(), **env},
    )
    try:
        with anyio.fail_after(start_timeout):
            while not await anyio.Path(port_file).exists():
                if process.returncode is not None:
                    raise RuntimeError(
                        f"the official server exited: {_tail(log_dir / 'official-server.log')}"
                    )
                await anyio.sleep(0.02)
        port = int(await anyio.Path(port_file).read_text())
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await _stop(process)
        log.close()


async def official_client(
    python: Path, url: str, tool: str, arguments: str, *, payer_key: str, calls: int = 1, warmup: int = 0
) -> dict[str, Any]:
    """Run the official `x402MCPClient` against `url`; returns what the script printed."""
    import json

    with anyio.fail_after(300):
        done = await anyio.run_process(
            [str(python), str(CLIENT_SCRIPT), url, tool, arguments, str(calls), str(warmup)],
            env={**_base_env(), "PAYER_KEY": payer_key},
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the official client failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _base_env() -> dict[str, str]:
    # Nothing of our environment leaks in (no VIRTUAL_ENV, no secrets): only what Python needs.
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            with anyio.fail_after(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            with anyio.fail_after(5):
                await process.wait()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]
