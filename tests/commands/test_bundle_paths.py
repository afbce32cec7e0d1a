"""Names and paths the bundle, serve and claude-config commands take stay where they belong:
a sample *name* is looked up in the known list only, archive entries stay inside the bundle as
any OS's extractor reads them, and the bundle is written without following planted symlinks."""

from __future__ import annotations

import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from x402_mcp.cli.bundle import build_bundle, safe_entry_name
from x402_mcp.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "servers" / "mathlab.py"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        "server\\..\\..\\evil.py",
        "..\\evil.py",
        "/etc/evil",
        "C:/evil.py",
        "c:evil.py",
        "server/C:evil.py",
        "../evil.py",
        "server/../../evil.py",
        "server//evil.py",
        "server/./evil.py",
        "",
        "server/evil\x00.py",
        "server/evil\n.py",
    ],
)
def test_an_entry_name_that_leaves_the_bundle_on_any_os_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="would be written outside the bundle"):
        safe_entry_name(name)


def test_every_entry_of_a_real_bundle_is_plain(tmp_path: Path) -> None:
    archive = build_bundle("mathlab", output=str(tmp_path / "m.mcpb"), from_index=True)
    with zipfile.ZipFile(archive) as contents:
        names = contents.namelist()
    assert sorted(names) == ["manifest.json", "pyproject.toml", "server/mathlab.py"]
    for name in names:
        assert safe_entry_name(name) == name


@pytest.mark.parametrize(
    "script", ["server\\..\\..\\evil.py", "..\\..\\evil.py", "C:evil.py", "my server.py"]
)
def test_a_script_whose_name_is_not_plain_is_refused_and_nothing_written(tmp_path: Path, script: str) -> None:
    (tmp_path / script).write_text(SAMPLE.read_text())
    before = sorted(tmp_path.iterdir())
    done = cli("bundle", script, "--from-index", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cannot go into a bundle: rename it" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_a_symlink_planted_at_the_temporary_name_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    # The partial name is random; an attacker who guessed it still cannot write through it.
    monkeypatch.setattr(secrets, "token_hex", lambda size=None: "0" * 16)
    planted = out / ".m.mcpb.0000000000000000.partial"
    planted.symlink_to(victim)
    # The old, predictable partial name as well.
    (out / ".m.mcpb.partial").symlink_to(victim)
    with pytest.raises(ConfigurationError, match="cannot write"):
        build_bundle("mathlab", output=str(out / "m.mcpb"), from_index=True)
    assert victim.read_text() == "precious"
    assert planted.is_symlink() and not (out / "m.mcpb").exists()
    planted.unlink()
    monkeypatch.undo()
    archive = build_bundle("mathlab", output=str(out / "m.mcpb"), from_index=True)
    assert zipfile.is_zipfile(archive) and not archive.is_symlink()
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == [".m.mcpb.partial", "m.mcpb"]


def test_an_output_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.mcpb"
    victim.write_text("precious")
    link = tmp_path / "link.mcpb"
    link.symlink_to(victim)
    with pytest.raises(ConfigurationError, match="is a symbolic link"):
        build_bundle("mathlab", output=str(link), from_index=True)
    assert victim.read_text() == "precious" and link.is_symlink()


@pytest.mark.parametrize("command", [["bundle"], ["serve"], ["claude-config"]])
@pytest.mark.parametrize("how", ["relative", "absolute", "backslash"])
def test_a_sample_name_never_imports_a_script_from_elsewhere(
    tmp_path: Path, command: list[str], how: str
) -> None:
    """A name (no .py) is looked up in the known list, never joined to the samples folder."""
    marker = tmp_path / "imported"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef build(payments): raise SystemExit(7)\n")
    cwd = tmp_path / "work"
    cwd.mkdir()
    name = {
        "relative": "../" * 12 + str(tmp_path.relative_to("/") / "evil"),
        "absolute": str(tmp_path / "evil"),
        "backslash": "..\\" * 12 + str(tmp_path / "evil"),
    }[how]
    done = cli(*command, name, cwd=cwd)
    assert done.returncode == 2, done.stderr
    assert "no sample server" in done.stderr and "mathlab" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("command", [["bundle"], ["serve"], ["claude-config"]])
def test_a_missing_script_path_says_so(tmp_path: Path, command: list[str]) -> None:
    done = cli(*command, "nowhere/server.py", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "'nowhere/server.py' is not a file" in done.stderr
