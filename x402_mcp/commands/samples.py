"""Finding the sample servers of `servers/` (shared by `serve` and `claude-config`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from ..errors import ConfigurationError

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "servers"


def sample_names() -> list[str]:
    return sorted(p.stem for p in SAMPLES_DIR.glob("*.py") if not p.stem.startswith("_"))


def sample_path(name: str) -> Path:
    """The absolute path of sample `name`, or of a server script given by path."""
    candidate = Path(name)
    if candidate.suffix == ".py" and candidate.is_file():
        return candidate.resolve()
    path = SAMPLES_DIR / f"{name}.py"
    if not path.is_file():
        known = ", ".join(sample_names()) or "none found"
        raise ConfigurationError(f"no sample server {name!r} (known: {known}); or give a path to a .py file")
    return path


def load_sample(name: str) -> ModuleType:
    path = sample_path(name)
    spec = importlib.util.spec_from_file_location(f"x402_mcp_sample_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
