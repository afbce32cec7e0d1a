"""Finding the sample servers of `servers/` (shared by `serve` and `claude-config`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

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


def build_gated(module: ModuleType, payments: Any, where: str) -> Any:
    """`module.build(payments)`: the author's server, refused when it lists `@paid` tools that
    no payments gate answers (its build forgot `extensions=[payments]` / `payments.install`).

    Raises:
        ConfigurationError: naming the tools and the line that installs the gate.
    """
    from ..frameworks.coverage import require_gate

    server = module.build(payments)
    require_gate(server, where)
    return server


def check_gated(name: str) -> None:
    """Build server script `name` as its defaults would (embedded chain, throwaway ledger) and
    refuse it when its paid tools have no gate; a script without `build(payments)` is not built.

    Raises:
        ConfigurationError: as `build_gated`.
    """
    import tempfile

    from ..payments import Payments

    module = load_sample(name)
    if not callable(getattr(module, "build", None)):
        return
    with tempfile.TemporaryDirectory(prefix="x402-check-ledger-") as scratch:
        env = {"X402_SETTLEMENT": "devchain", "X402_LEDGER_URL": f"sqlite:///{scratch}/ledger.sqlite"}
        build_gated(module, Payments.from_env(env), sample_path(name).name)
