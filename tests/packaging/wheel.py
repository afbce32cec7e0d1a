"""Building this project's distributions with uv, as a release would."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Distributions:
    wheel: Path
    sdist: Path | None


def build_distributions(out_dir: Path, *, sdist: bool = True) -> Distributions:
    """`uv build` of the checkout into `out_dir` (the wheel is built from the sdist when both are)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    command = [uv, "build", "--quiet", "--out-dir", str(out_dir), str(ROOT)]
    if not sdist:
        command.insert(2, "--wheel")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = out_dir.glob("mcp_x402-*-py3-none-any.whl")
    sdists = list(out_dir.glob("mcp_x402-*.tar.gz"))
    assert len(sdists) == (1 if sdist else 0)
    return Distributions(wheel, sdists[0] if sdists else None)
