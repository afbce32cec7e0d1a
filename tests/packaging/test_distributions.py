"""`uv build` makes a wheel and an sdist holding every package file, and the wheel, installed
with pip into a clean virtual environment, runs `x402-mcp demo` there.

pip fetches the dependencies from the package index (its cache makes a rerun quick), held
to the versions `[tool.uv] constraint-dependencies` pins, so the run is the tested one.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from ..commands.test_demo import assert_the_story_holds
from .wheel import ROOT, Distributions, build_distributions

PACKAGE = ROOT / "x402_mcp"
WHERE_FROM = "import x402_mcp, importlib.metadata as m; print(x402_mcp.__file__, m.version('mcp-x402'))"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    return build_distributions(tmp_path_factory.mktemp("dist"))


def package_files() -> set[str]:
    """Every file of the import package in the source tree, data included, as a wheel names it."""
    found = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    # Guard the guard: the data files this project is known to need are among them.
    assert {
        "x402_mcp/py.typed",
        "x402_mcp/settlement/contracts/USDC.json",
        "x402_mcp/settlement/contracts/USDC.sol",
        "x402_mcp/page/static/pay.html",
        "x402_mcp/page/static/pay.js",
    } <= found
    return found


def test_the_wheel_and_the_sdist_hold_every_file_of_the_package(built: Distributions) -> None:
    expected = package_files()
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(wheel.read(metadata_name).decode())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    missing = sorted(expected - names)
    assert not missing, f"package files left out of the wheel: {missing}"
    # Nothing outside the import package and its metadata is installed.
    assert {name.split("/")[0] for name in names} == {"x402_mcp", "mcp_x402-0.1.0.dist-info"}
    assert metadata["Name"] == "mcp-x402"
    assert metadata["Requires-Python"] == ">=3.11"
    assert "postgres" in metadata.get_all("Provides-Extra", [])
    assert "x402-mcp = x402_mcp.cli.main:main" in scripts

    assert built.sdist is not None
    with tarfile.open(built.sdist) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    missing = sorted(expected - members)
    assert not missing, f"package files left out of the sdist: {missing}"
    assert {"pyproject.toml", "README.md", "servers/textkit.py", "tests/conftest.py"} <= members


def test_the_wheel_installs_with_pip_in_a_clean_venv_and_runs_the_demo(
    built: Distributions, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["constraint-dependencies"]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    # The machine's pip settings (its certificates, its cache) stay; nothing of our environment does.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "-c", str(constraints),
         str(built.wheel)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]

    # Run outside the checkout, so nothing can be imported from it.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    home = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    where = subprocess.run(
        [str(python), "-c", WHERE_FROM],
        capture_output=True, text=True, timeout=120, cwd=outside, env=home, check=True,
    ).stdout.split()  # fmt: skip
    assert Path(where[0]).is_relative_to(venv) and where[1] == "0.1.0"

    demo = subprocess.run(
        [str(venv / "bin" / "x402-mcp"), "demo"],
        capture_output=True, text=True, timeout=300, cwd=outside, env=home, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert_the_story_holds(demo.stdout)

    # Installed, `bundle` takes a server script by path and ships no wheel: the bundle gets
    # the same release from the package index.
    bundled = subprocess.run(
        [str(venv / "bin" / "x402-mcp"), "bundle", str(ROOT / "servers" / "mathlab.py"), "-o", str(outside)],
        capture_output=True, text=True, timeout=300, cwd=outside, env=home, check=False,
    )  # fmt: skip
    assert bundled.returncode == 0, bundled.stderr
    with zipfile.ZipFile(outside / "mathlab.mcpb") as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "pyproject.toml", "server/mathlab.py"]
        project = tomllib.loads(archive.read("pyproject.toml").decode())
    assert project["project"]["dependencies"] == ["mcp-x402==0.1.0"]
