"""Finding a server script and the server in it (shared by `serve`, `bundle` and `claude-config`).

A script is a sample's name (`textkit`) or the path of a `.py` file. The samples live at
`servers/` in the repository and ship in the wheel as `x402_mcp/samples/` (pyproject's
`force-include`); `samples_dir()` is the one place that knows which one this install has.

The server in a script is what its `build(payments)` returns, or else the one `MCPServer`
or FastMCP server it makes at module level (with its own `Payments` installed); the
framework is read from the server object itself.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..core.text import shown
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..frameworks.payments import Payments

_PACKAGE = Path(__file__).resolve().parents[1]
INSTALLED_SAMPLES = _PACKAGE / "samples"
"""Where the wheel puts the samples."""
CHECKOUT_SAMPLES = _PACKAGE.parent / "servers"
"""Where a checkout (an editable install) has them."""


def samples_dir() -> Path | None:
    """The folder of the sample servers: the installed package's, else the checkout's, else None."""
    for folder in (INSTALLED_SAMPLES, CHECKOUT_SAMPLES):
        if (folder / "textkit.py").is_file():
            return folder
    return None


def sample_names() -> list[str]:
    folder = samples_dir()
    if folder is None:
        return []
    return sorted(p.stem for p in folder.glob("*.py") if p.stem.isidentifier() and not p.stem.startswith("_"))


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
    folder = samples_dir()
    if name not in known or folder is None:
        listed = ", ".join(known) or "none found"
        raise ConfigurationError(
            f"no sample server {shown(name, 80)!r} (known: {listed}); or give a path to a .py file"
        )
    return folder / f"{name}.py"


def load_sample(name: str) -> ModuleType:
    """The module of sample or script `name`, executed (not as `__main__`, so it serves nothing).

    Raises:
        ConfigurationError: no such script, or it failed while loading (its error named).
    """
    path = sample_path(name)
    spec = importlib.util.spec_from_file_location(f"x402_mcp_sample_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # As `python script.py` would: the script's folder first, for its sibling modules.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"{path} failed while loading: {type(exc).__name__}: {exc}") from exc
    return module


@dataclass(frozen=True)
class LoadedServer:
    """A server found in a script, and what it charges through."""

    script: Path
    module: ModuleType
    server: Any
    framework: str
    payments: Payments | None
    """The `Payments` installed on it (None for a module-level server that installs none)."""


def load_server(
    name: str, environ: Mapping[str, str] | None = None, framework: str | None = None
) -> LoadedServer:
    """The server of script `name`: `build(Payments.from_env(environ))` when the script has
    `build` (`build(payments, framework)` when a framework is named), else the one server the
    script makes at module level.

    `environ` (default: the process's) is also what the script sees in `os.environ` while it
    loads, so a module-level `Payments.from_env()` reads the same settings.

    Raises:
        ConfigurationError: no such script; no server in it; several servers; a server of
            an unsupported framework; or a setting `Payments.from_env` refuses.
    """
    from ..frameworks.detect import framework_of
    from ..frameworks.payments import Payments

    with _environment(environ):
        module = load_sample(name)
        script = Path(str(module.__file__))
        build = getattr(module, "build", None)
        if callable(build):
            payments = Payments.from_env(environ)
            server = build(payments) if framework is None else build(payments, framework)
            framework = framework_of(server)
            if framework is None:
                raise ConfigurationError(
                    f"{script}: build(payments) returned {_kind(server)}, not a supported server; "
                    "return an mcp MCPServer, an mcp.server.fastmcp.FastMCP or a fastmcp.FastMCP server"
                )
            return _gated(LoadedServer(script, module, server, framework, payments))
    server, framework = _module_server(script, module)
    installed = [
        value for value in vars(module).values() if isinstance(value, Payments) and value.server is server
    ]
    return _gated(LoadedServer(script, module, server, framework, installed[0] if installed else None))


def _gated(loaded: LoadedServer) -> LoadedServer:
    """`loaded`, refused when it lists `@paid` tools that no payments gate answers (the script
    forgot `extensions=[payments]` / `payments.install`): a forgotten gate is an error at start."""
    from ..frameworks.coverage import require_gate

    require_gate(loaded.server, str(loaded.script))
    return loaded


def check_gated(name: str) -> None:
    """Load server script `name` as its defaults would (embedded chain, throwaway ledger) and
    refuse it when its paid tools have no gate.

    Raises:
        ConfigurationError: as `load_server`.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="x402-check-ledger-") as scratch:
        env = {name: value for name, value in os.environ.items() if not name.startswith("X402_")}
        env.update({"X402_SETTLEMENT": "devchain", "X402_LEDGER_URL": f"sqlite:///{scratch}/ledger.sqlite"})
        load_server(name, env)


def serves_when_run(script: Path) -> bool:
    """Whether `script` has a module-level `if __name__ == "__main__":` block (what a host
    runs when it starts the script: without one, nothing would serve)."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            parts = [node.test.left, *node.test.comparators]
            names = {part.id for part in parts if isinstance(part, ast.Name)}
            values = {part.value for part in parts if isinstance(part, ast.Constant)}
            if names == {"__name__"} and values == {"__main__"}:
                return True
    return False


def _module_server(script: Path, module: ModuleType) -> tuple[Any, str]:
    from ..frameworks.detect import framework_of

    found: dict[int, tuple[str, Any]] = {}
    unsupported: list[str] = []
    for variable, value in vars(module).items():
        if variable.startswith("__") or isinstance(value, type | ModuleType):
            continue
        if framework_of(value) is not None:
            found.setdefault(id(value), (variable, value))
        elif _looks_like_a_server(value):
            unsupported.append(f"{variable} ({_kind(value)})")
    if len(found) > 1:
        names = ", ".join(variable for variable, _ in found.values())
        raise ConfigurationError(
            f"{script} makes several servers ({names}); keep one at module level, "
            "or define build(payments) returning the one to serve"
        )
    if found:
        ((_, server),) = found.values()
        return server, str(framework_of(server))
    if unsupported:
        raise ConfigurationError(
            f"{script}: {', '.join(unsupported)} is not of a supported framework; x402-mcp serves an "
            "mcp MCPServer (MCP SDK 2.x), an mcp.server.fastmcp.FastMCP (SDK 1.x) or a "
            "fastmcp.FastMCP server (FastMCP 3 or 4)"
        )
    raise ConfigurationError(
        f"no server found in {script}: define build(payments) returning an MCPServer or FastMCP server, "
        "or make one at module level (e.g. mcp = FastMCP(...); payments.install(mcp))"
    )


def _looks_like_a_server(value: object) -> bool:
    # Other MCP server classes (the SDK 1.x FastMCP, the low-level Server, other frameworks'):
    # named, so the author learns why theirs is not served.
    return any(
        cls.__name__ in ("FastMCP", "MCPServer", "Server")
        and cls.__module__.split(".")[0] in ("mcp", "fastmcp")
        for cls in type(value).__mro__
    )


def _kind(value: object) -> str:
    return f"a {type(value).__module__}.{type(value).__qualname__}"


@contextlib.contextmanager
def _environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    """`environ` as `os.environ` for the duration (nothing changes when it is None)."""
    if environ is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
