"""Finding the sample servers of `servers/` (shared by `serve` and `claude-config`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from ..errors import ConfigurationError
from ..text import shown

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "servers"


def sample_names() -> list[str]:
    return sorted(
        p.stem for p in SAMPLES_DIR.glob("*.py") if p.stem.isidentifier() and not p.stem.startswith("_")
    )


def sample_path(name: str) -> Path:
    """The absolute path of sample `name`, or of a server script given by path.

    A name is only ever looked up in the known list, never joined to a folder: "../x",
    "/tmp/x" or "a\\b" name no sample. Anything ending in `.py` is a path the user chose.

    Raises:
        ConfigurationError: a path that is not a file, or a name that is not a known sample.
    """
    if name.endswith(".py"):
        candidate = Path(name)
        if not candidate.is_file():
            raise ConfigurationError(
                f"{name!r} is not a file; give the path of an existing server script, or a sample's name"
            )
        return candidate.resolve()
    known = sample_names()
    if name not in known:
        listed = ", ".join(known) or "none found"
        raise ConfigurationError(
            f"no sample server {shown(name, 80)!r} (known: {listed}); or give a path to a .py file"
        )
    return SAMPLES_DIR / f"{name}.py"


def load_sample(name: str) -> ModuleType:
    path = sample_path(name)
    spec = importlib.util.spec_from_file_location(f"x402_mcp_sample_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
