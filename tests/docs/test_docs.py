"""The docs run: every python and sh block in README.md and docs/ is executed, and the site builds.

Each fenced block whose language is code (python, sh) is run as a user would run it:

- python: in a fresh interpreter of this environment;
- sh: with bash (`set -euo pipefail`), with `uv run` pointed at this checkout (UV_PROJECT)
  and `x402-mcp` on PATH;
- the blocks of one page run in order in one temporary folder of their own (a page may
  write a file in one block and read it in the next), never in the checkout;
- `<!-- server: wait-for="TEXT" -->` before a block: it is started, must print TEXT within
  the deadline, and is then stopped with Ctrl+C (SIGINT), as a person would;
  add `needs=anvil` when it starts anvil (skipped with the reason when anvil is absent);
- `<!-- continues -->` before a python block: it runs after the python blocks above it on
  the same page (a page that builds one program step by step);
- `<!-- needs: anvil -->` before a block: it starts anvil itself (skipped, with the reason,
  when anvil is absent, unless X402_REQUIRE_ANVIL=1);
- `<!-- needs: mcp1 -->` before a python block: it is written for the older MCP line and runs
  in `.venv-mcp1` (MCP SDK 1.x, FastMCP 3; tools/mcp1-env.sh), skipped when that is absent,
  unless X402_REQUIRE_MCP1=1;
- `<!-- fragment: REASON -->` before a block: it is not run, and REASON says why (a funded
  key, a mainnet deployment, a file of Claude Desktop's). A fragment without a reason fails.

Every run gets its own XDG_DATA_HOME, so no snippet touches the user's ledgers or budgets.
Blocks in other languages (text, json, toml) are shown, not run; a fence without a language
fails, so nothing escapes by accident.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ..chains import anvil_or_skip
from ..npm import missing

ROOT = Path(__file__).resolve().parents[2]
CODE_LANGUAGES = {"python", "sh"}
SHOWN_LANGUAGES = {"text", "json", "toml", "yaml", "html"}
RUN_SECONDS = 240
SERVER_READY_SECONDS = 180

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>fragment|server|continues|needs)\b:?\s*(?P<arg>.*?)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    markers: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        markers: dict[str, str] = {}
        back = index - 1
        while back >= 0 and (lines[back].strip() == "" or _MARKER.match(lines[back])):
            marker = _MARKER.match(lines[back])
            if marker:
                markers.setdefault(marker["kind"], marker["arg"])
            back -= 1
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][indent:] if lines[index][:indent].strip() == "" else lines[index])
            index += 1
        code = "\n".join(body) + "\n"
        blocks.append(Block(page, index - len(body), opening["info"].lower(), code, markers))
        index += 1
    return blocks


ALL_BLOCKS = [block for page in _pages() for block in _blocks(page)]
CODE_BLOCKS = [block for block in ALL_BLOCKS if block.language in CODE_LANGUAGES]


def test_every_block_says_what_it_is() -> None:
    unlabeled = [
        f"{block.where}: fence without a language (use python, sh, or one of {sorted(SHOWN_LANGUAGES)})"
        for block in ALL_BLOCKS
        if block.language not in CODE_LANGUAGES | SHOWN_LANGUAGES
    ]
    assert not unlabeled, "\n".join(unlabeled)


def test_every_fragment_gives_its_reason() -> None:
    silent = [
        f"{block.where}: `<!-- fragment: ... -->` needs a reason why it cannot run"
        for block in ALL_BLOCKS
        if "fragment" in block.markers and len(block.markers["fragment"]) < 8
    ]
    assert not silent, "\n".join(silent)
    assert CODE_BLOCKS, "no code blocks found: the extractor is broken"


def test_the_readme_keeps_the_test_command_ci_runs() -> None:
    # .ci/run runs exactly `uv run pytest`, the README's test command.
    readme_sh = "".join(block.code for block in _blocks(ROOT / "README.md") if block.language == "sh")
    assert re.search(r"^uv run pytest\b", readme_sh, re.M), "README.md lost its `uv run pytest` line"
    ci = ROOT / ".ci" / "run"  # not in the sdist
    if ci.exists():
        assert "uv run pytest" in ci.read_text()


# A reader's shell has none of the suite's X402_* settings (X402_POSTGRES_URL, X402_REQUIRE_*):
# snippets run without them, so each page says everything it needs. Where anvil is stays.
_KEPT_X402_VARIABLES = {"X402_ANVIL"}


README_MAX_LINES = 300


def test_the_readme_is_a_front_page_whose_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES, "README.md is the front page: move detail to docs/"
    assert "## What the toolkit refuses to do" in readme
    targets = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    assert targets, "the README links into docs/"
    missing = sorted({target for target in targets if not (ROOT / target).exists()})
    assert not missing, f"README.md links to files that do not exist: {missing}"


def _environment(workdir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("X402_") or name in _KEPT_X402_VARIABLES
    }
    env.update(
        XDG_DATA_HOME=str(workdir / "data"),
        UV_PROJECT=str(ROOT),
        UV_NO_SYNC="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _program(block: Block) -> str:
    if "continues" not in block.markers:
        return block.code
    earlier = [
        other.code
        for other in _blocks(block.page)
        if other.language == "python" and other.line < block.line and "fragment" not in other.markers
    ]
    return "\n".join([*earlier, block.code])


MCP1_PYTHON = ROOT / ".venv-mcp1" / "bin" / "python"


def _command(block: Block, workdir: Path) -> list[str]:
    if block.language == "python":
        script = workdir / "snippet.py"
        script.write_text(_program(block))
        if block.markers.get("needs") == "mcp1":
            if not MCP1_PYTHON.exists():
                missing(
                    f"{MCP1_PYTHON} is missing; build it with tools/mcp1-env.sh",
                    required_by="X402_REQUIRE_MCP1",
                )
            return [str(MCP1_PYTHON), str(script)]
        return [sys.executable, str(script)]
    return ["bash", "-euo", "pipefail", "-c", block.code]


def _run_server(block: Block, command: list[str], workdir: Path) -> None:
    wanted = re.fullmatch(r'wait-for="(?P<text>[^"]+)"(?:\s+needs=(?P<needs>\w+))?', block.markers["server"])
    assert wanted, f'{block.where}: write <!-- server: wait-for="TEXT" [needs=anvil] -->'
    if wanted["needs"] == "anvil":
        anvil_or_skip()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=_environment(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if wanted["text"] in "".join(output):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + SERVER_READY_SECONDS
        while not ready.is_set() and process.poll() is None and time.monotonic() < deadline:
            ready.wait(0.2)
        assert ready.is_set(), f"{block.where}: never printed {wanted['text']!r}:\n{''.join(output)[-4000:]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=5)


_PAGE_FOLDERS: dict[Path, Path] = {}


@pytest.fixture
def page_folder(block: Block, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if block.page not in _PAGE_FOLDERS:
        _PAGE_FOLDERS[block.page] = tmp_path_factory.mktemp(block.page.stem)
    return _PAGE_FOLDERS[block.page]


@pytest.mark.parametrize("block", CODE_BLOCKS, ids=[block.where for block in CODE_BLOCKS])
def test_block_runs(block: Block, page_folder: Path) -> None:
    tmp_path = page_folder
    if "fragment" in block.markers:
        pytest.skip(f"fragment: {block.markers['fragment']}")
    if block.markers.get("needs") == "anvil":
        anvil_or_skip()
    command = _command(block, tmp_path)
    if "server" in block.markers:
        _run_server(block, command, tmp_path)
        return
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, (
        f"{block.where} failed ({done.returncode}):\n{block.code}\n--- output\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (uv sync --all-groups installs it; CI has it)")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    output = f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    assert (tmp_path / "site" / "reference" / "settlement" / "index.html").exists()


def test_the_extractor_reads_markers_and_indented_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n"
        "<!-- fragment: needs a funded key -->\n\n"
        "```sh\nx402-mcp call url tool\n```\n\n"
        "1. A step:\n\n"
        '    <!-- server: wait-for="ready" needs=anvil -->\n\n'
        "    ```sh\n    x402-mcp devnet\n    ```\n\n"
        "<!-- continues -->\n"
        "```python\nprint(1)\n```\n\n"
        "```\nno language\n```\n"
    )
    fragment, server, continued, unlabeled = _blocks(page)
    assert (fragment.language, fragment.markers) == ("sh", {"fragment": "needs a funded key"})
    assert server.code == "x402-mcp devnet\n"
    assert server.markers == {"server": 'wait-for="ready" needs=anvil'}
    assert (continued.language, continued.code) == ("python", "print(1)\n")
    assert continued.markers == {"continues": ""}
    assert unlabeled.language == "" and unlabeled.markers == {}
