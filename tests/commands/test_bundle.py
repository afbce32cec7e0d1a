"""`x402-mcp bundle`: each sample becomes a `.mcpb` that the pinned `mcpb` accepts and that runs
as Claude Desktop starts it (the host's own config code from `@anthropic-ai/mcpb` resolves the
command, then uv makes the environment and the server is paid through its page)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from x402_mcp.cli.bundle import build_bundle
from x402_mcp.cli.main import main
from x402_mcp.core.challenge import META_HOSTED_URL, META_PRICE

from ..npm import INSTALL_HINT, NODE_MODULES, missing
from ..packaging.wheel import build_distributions
from ..servers.test_samples import text_of

ROOT = Path(__file__).resolve().parents[2]
MCPB_PACKAGE = NODE_MODULES / "@anthropic-ai" / "mcpb"
MCPB = NODE_MODULES / ".bin" / "mcpb"
TOOLS = {
    "textkit": {"word_count", "summarize"},
    "mathlab": {"is_prime", "factorize"},
    "passphrase": {"password_strength", "passphrase"},
}
PAID = {"textkit": "summarize", "mathlab": "factorize", "passphrase": "passphrase"}


def mcpb_or_skip() -> Path:
    if MCPB.exists() and shutil.which("node"):
        return MCPB
    # CI installs tools/ and requires all of it.
    missing(
        f"node or @anthropic-ai/mcpb in {NODE_MODULES} is missing; {INSTALL_HINT}",
        required_by="X402_REQUIRE_ANVIL",
    )


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_distributions(tmp_path_factory.mktemp("dist"), sdist=False).wheel


def bundle(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", "bundle", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )  # fmt: skip


def unpacked(mcpb: Path, archive: Path, into: Path) -> Path:
    """The bundle unpacked by `mcpb unpack`, as the host unpacks it."""
    done = subprocess.run(
        [str(mcpb), "unpack", str(archive), str(into)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return into


def host_config(manifest_dir: Path, user_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The command, arguments and environment the host derives from the manifest: computed by
    `getMcpConfigForManifest` of `@anthropic-ai/mcpb`, the code Claude Desktop runs."""
    script = """
const [, configJs, dir, userConfig] = process.argv;
const { getMcpConfigForManifest } = await import(configJs);
const fs = await import("node:fs");
const manifest = JSON.parse(fs.readFileSync(dir + "/manifest.json", "utf8"));
const config = await getMcpConfigForManifest({
  manifest, extensionPath: dir, systemDirs: { HOME: process.env.HOME }, userConfig: JSON.parse(userConfig),
  pathSeparator: "/",
});
process.stdout.write(JSON.stringify(config ?? null));
"""
    config_js = (MCPB_PACKAGE / "dist" / "shared" / "config.js").as_uri()
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script, "--", config_js, str(manifest_dir),
         json.dumps(user_config or {})],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_each_sample_bundles_into_an_mcpb_that_mcpb_validate_accepts(
    name: str, wheel: Path, tmp_path: Path
) -> None:
    mcpb = mcpb_or_skip()
    done = bundle(name, "--output", str(tmp_path), "--wheel", str(wheel))
    assert done.returncode == 0, done.stderr
    archive = Path(done.stdout.strip())
    assert archive == tmp_path / f"{name}.mcpb" and archive.is_file()

    root = unpacked(mcpb, archive, tmp_path / "unpacked")
    validated = subprocess.run([str(mcpb), "validate", str(root)], capture_output=True, text=True, timeout=60)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "Manifest schema validation passes!" in validated.stdout

    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["manifest_version"] == "0.4" and manifest["name"] == f"x402-mcp-{name}"
    assert manifest["author"]["name"] and manifest["description"].startswith(f"{name}: ")
    server = manifest["server"]
    assert server["type"] == "uv"
    # The sample itself is the entry point, byte for byte.
    assert (root / server["entry_point"]).read_bytes() == (ROOT / "servers" / f"{name}.py").read_bytes()
    assert {tool["name"] for tool in manifest["tools"]} == TOOLS[name]
    described = {tool["name"]: tool["description"] for tool in manifest["tools"]}
    assert "Paid tool: $" in described[PAID[name]]
    assert all("Paid tool" not in text for tool, text in described.items() if tool != PAID[name])

    options = manifest["user_config"]
    assert {key for key, option in options.items() if option.get("sensitive")} == {
        "rpc_url",
        "settlement_key",
    }
    assert options["settlement"]["default"] == "devchain"
    assert all("default" in option and not option["required"] for option in options.values())

    # The environment ships this very package: the wheel inside, named as the dependency's source.
    project = tomllib.loads((root / "pyproject.toml").read_text())
    (requirement,) = project["project"]["dependencies"]
    assert requirement == "mcp-x402==0.1.0"
    source = project["tool"]["uv"]["sources"]["mcp-x402"]["path"]
    assert (root / source).read_bytes() == wheel.read_bytes()
    assert "web3==8.0.0" in project["tool"]["uv"]["constraint-dependencies"]

    # With the defaults, the host runs uv in the bundle's folder on the embedded chain, no secret set.
    config = host_config(root)
    assert config["command"] == "uv"
    assert config["args"] == ["run", "--directory", str(root), server["entry_point"]]
    assert config["env"] == {
        "X402_SETTLEMENT": "devchain",
        "X402_NETWORK": "base-sepolia",
        "X402_PAY_TO": "",
        "X402_RPC_URL": "",
        "X402_SETTLEMENT_KEY": "",
    }
    live = host_config(root, {"settlement": "local", "settlement_key": "0x" + "1" * 64})
    assert live["env"]["X402_SETTLEMENT"] == "local" and live["env"]["X402_SETTLEMENT_KEY"] == "0x" + "1" * 64


@pytest.mark.anyio
async def test_the_bundle_runs_as_claude_desktop_starts_it_and_is_paid_through_its_page(
    tmp_path: Path,
) -> None:
    mcpb = mcpb_or_skip()
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    # No --wheel: the command builds the wheel to ship from this checkout.
    done = await anyio.to_thread.run_sync(lambda: bundle("textkit", cwd=tmp_path))
    assert done.returncode == 0, done.stderr
    archive = tmp_path / "textkit.mcpb"
    assert Path(done.stdout.strip()) == archive
    with zipfile.ZipFile(archive) as contents:
        assert any(item.startswith("wheels/mcp_x402-") for item in contents.namelist())
    root = unpacked(mcpb, archive, tmp_path / "extension")
    config = host_config(root)

    # The host starts the server with little more than the variables of its manifest. The
    # machine's TLS settings pass through so that uv reaches the package index from here.
    passed = ("PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR")
    env = {each: os.environ[each] for each in passed if each in os.environ}
    env |= {**config["env"], "XDG_DATA_HOME": str(tmp_path / "data"), "X402_PAGE_PORT": "0"}
    server = StdioServerParameters(command=config["command"], args=config["args"], env=env)
    with anyio.fail_after(240):
        async with Client(server, mode="legacy") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == TOOLS["textkit"]
            summarize = tools["summarize"]
            assert summarize.annotations is not None and summarize.annotations.read_only_hint is True
            assert summarize.title == "Summarize text (paid)" and (summarize.meta or {}).get(META_PRICE)

            text = {"text": "Cats purr. Dogs bark loudly at night. Cats and dogs sleep.", "sentences": 1}
            unpaid = await client.call_tool("summarize", text)
            assert unpaid.is_error and "Payment required" in text_of(unpaid)
            hosted = str((unpaid.meta or {})[META_HOSTED_URL])
            async with httpx2.AsyncClient(timeout=30) as web:
                paid = await web.post(f"{hosted}/demo", json={})
                assert paid.status_code == 200, paid.text
            result = await client.call_tool("summarize", text)
            assert not result.is_error, text_of(result)
            assert "Cats" in text_of(result)
    # The ledger went where the host's environment put the user's data, inside the test's folder.
    # One file of this server's own (the default ledger is per server), none shared.
    assert [
        path.name.startswith("textkit")
        for path in (tmp_path / "data" / "x402-mcp" / "ledgers").glob("*.sqlite")
    ] == [True]
    assert not (tmp_path / "data" / "x402-mcp" / "ledger.sqlite").exists()


def test_from_index_ships_no_wheel_and_names_the_release(tmp_path: Path) -> None:
    archive = build_bundle("mathlab", output=str(tmp_path / "m.mcpb"), from_index=True)
    with zipfile.ZipFile(archive) as contents:
        names = contents.namelist()
        project = tomllib.loads(contents.read("pyproject.toml").decode())
    assert sorted(names) == ["manifest.json", "pyproject.toml", "server/mathlab.py"]
    assert project["project"]["dependencies"] == ["mcp-x402==0.1.0"]
    assert "sources" not in project["tool"]["uv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no sample server 'nope' (known: mathlab, passphrase, textkit)"),
        (["textkit", "--output", "bundle.zip"], "must be a .mcpb file or an existing folder"),
        (["textkit", "--output", "missing/t.mcpb"], "the folder 'missing' does not exist"),
        (["textkit", "--wheel", "README.md"], "is not a mcp-x402 wheel"),
        (["textkit", "--wheel", "mcp_x402-9.9.9-py3-none-any.whl"], "is version 9.9.9, but this is mcp-x402"),
        (["textkit", "--wheel", "mcp_x402-0.1.0-py3-none-any.whl"], "cannot be read as a zip archive"),
        (["textkit", "--wheel", "w.whl", "--from-index"], "--wheel and --from-index exclude each other"),
    ],
)  # fmt: skip
def test_bad_input_is_named_and_writes_nothing(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("not a wheel")
    for fake in ("mcp_x402-9.9.9-py3-none-any.whl", "mcp_x402-0.1.0-py3-none-any.whl"):
        (tmp_path / fake).write_text("not a zip")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(SystemExit) as exited:
        main(["bundle", *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert sorted(tmp_path.iterdir()) == before


def test_the_command_refuses_a_script_without_a_server(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text('"""plain: no build function, no server."""\n')
    done = bundle(str(script), "--from-index", cwd=tmp_path)
    assert done.returncode == 2
    assert f"no server found in {script}: define build(payments)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "plain.mcpb").exists()
