"""The sample servers ship in the wheel: installed from it into a clean virtual environment
(uv venv, nothing of the checkout importable), `claude-config`, `serve` and `bundle` find
`textkit` by name, exactly as from a checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from x402_mcp.core.challenge import META_PRICE
from x402_mcp.frameworks.handshake import IDENTIFIER

from .wheel import ROOT, build_distributions

SAMPLES = ("textkit", "mathlab", "passphrase")


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    outside: Path
    """A folder outside the checkout, to run the commands in."""

    def command(self, *arguments: str) -> list[str]:
        return [str(self.venv / "bin" / "x402-mcp"), *arguments]

    def env(self, **extra: str) -> dict[str, str]:
        # Only what a person's shell has: no VIRTUAL_ENV, PYTHONPATH or X402_* of ours.
        passed = ("PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "UV_CACHE_DIR")
        return {k: os.environ[k] for k in passed if k in os.environ} | extra

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*arguments),
            capture_output=True, text=True, timeout=300, cwd=self.outside, env=self.env(), check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    work = tmp_path_factory.mktemp("wheel-samples")
    wheel = build_distributions(work / "dist", sdist=False).wheel
    venv = work / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, timeout=120, env=env)
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["constraint-dependencies"]
    constraints = work / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    done = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-c", str(constraints),
         str(wheel)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    outside = work / "elsewhere"
    outside.mkdir()
    return Installed(venv, wheel, outside)


def test_the_wheel_carries_the_samples_as_they_are_in_servers(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        for name in SAMPLES:
            shipped = wheel.read(f"x402_mcp/samples/{name}.py")
            assert shipped == (ROOT / "servers" / f"{name}.py").read_bytes()


def test_claude_config_names_the_installed_sample(installed: Installed) -> None:
    done = installed.run("claude-config", "textkit")
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)["mcpServers"]["textkit"]
    (script,) = entry["args"]
    assert Path(script).is_relative_to(installed.venv) and Path(script).name == "textkit.py"
    assert Path(script).is_file()
    assert entry["env"]["X402_SETTLEMENT"] == "devchain"


def test_an_unknown_sample_names_the_installed_ones(installed: Installed) -> None:
    done = installed.run("serve", "nosuch")
    assert done.returncode != 0
    assert "no sample server 'nosuch' (known: mathlab, passphrase, textkit)" in done.stderr


@pytest.mark.anyio
async def test_serve_runs_the_installed_sample_and_so_does_its_claude_config(
    installed: Installed, tmp_path: Path
) -> None:
    entry = json.loads(installed.run("claude-config", "textkit").stdout)["mcpServers"]["textkit"]
    ledger = {"X402_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}", "X402_PAGE_PORT": "0"}
    ways = {
        "serve": StdioServerParameters(
            command=installed.command()[0], args=["serve", "textkit"],
            env=installed.env(X402_SETTLEMENT="devchain", **ledger), cwd=installed.outside,
        ),
        "claude-config": StdioServerParameters(
            command=entry["command"], args=entry["args"], env=installed.env(**(entry["env"] | ledger)),
            cwd=installed.outside,
        ),
    }  # fmt: skip
    for way, params in ways.items():
        with anyio.fail_after(120):
            async with Client(params, mode="legacy") as client:
                capabilities = client.server_capabilities
                tools = {tool.name: tool for tool in (await client.list_tools()).tools}
                unpaid = await client.call_tool("summarize", {"text": "One. Two."})
        assert capabilities is not None and IDENTIFIER in (capabilities.extensions or {}), way
        assert set(tools) == {"word_count", "summarize"}, way
        # Priced per word: the listing says so, and the call names its price.
        assert (tools["summarize"].meta or {})[META_PRICE]["dynamic"] is True, way
        assert "$0.001 per word" in (tools["summarize"].description or ""), way
        assert unpaid.is_error, way


def test_bundle_finds_the_installed_sample(installed: Installed) -> None:
    done = installed.run("bundle", "textkit", "-o", str(installed.outside))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(installed.outside / "textkit.mcpb") as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        script = archive.read("server/textkit.py")
    # Installed, there is no checkout to build a wheel from: the bundle takes the release from the index.
    assert names == ["manifest.json", "pyproject.toml", "server/textkit.py"]
    assert script == (ROOT / "servers" / "textkit.py").read_bytes()
    assert {tool["name"] for tool in manifest["tools"]} == {"word_count", "summarize"}
