"""Paid and free calls per second over streamable HTTP with 1, 2 and 4 replicas on one ledger.

    uv run python bench/bench_replicas.py [--quick] [--replicas 1,2,4] [--seconds 12]
        [--generators 2] [--workers 8] [--sqlite] [--presigned] [--profile] [--anvil-flags "..."]

Needs PostgreSQL ($X402_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test)
and the anvil binary from tools/ (`npm ci` there).

Each figure gets a fresh anvil (its per-block cost grows with history) and a fresh
PostgreSQL schema; its replicas are `tests/replicas/paid_server.py` processes, each
with a gas account of its own. The load comes from `--generators` separate client
processes (one Python process saturates a core long before the replicas do), each
running `--workers` concurrent agents. An agent's paid call is what a real agent
does: the challenge from one replica, signing (inside the timed window), and the
paid retry on the next replica, which settles on anvil and runs the tool.

During each timed window the bench reads the CPU time (utime + stime from
/proc/<pid>/stat) of anvil, every replica, every load generator and the PostgreSQL
backends serving the replicas (found by their application_name), plus the whole
machine's busy time from /proc/stat. It prints CPU-ms per call by component, what
everything else on the machine used meanwhile (other load), and the bound the
machine's cores put on the rate: calls/s <= cores x 1000 ms / (CPU-ms per call).
Anvil's blocks per second are counted too (automine: one block per transaction).

Reading the table: calls/s near `bound/s` x (cores - other) / cores means the
machine's CPU is the limit, and more replicas cannot help (they share the same
cores); `lim-held` = worker tokens of a replica's settlement backend in use on
average, `lim-wait` = calls queued for one (a queue there means the backend is
the limit); `late` near 1 means a replica's event loop is saturated (one replica
is one GIL, so at most one core).

`--presigned` adds a row where the challenges are fetched and signed before the
window, so only the paid retries are timed: that separates the client's share.
`--profile` samples one replica with py-spy during the 1-replica paid window and
prints where its CPU goes by package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTGRES_URL = os.environ.get("X402_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CORES = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------- load generator


def _generator() -> None:
    """A load-generator process: one window per JSON line on stdin, until `quit`."""
    while (line := sys.stdin.readline().strip()) not in ("", "quit"):
        _generate(json.loads(line))


def _generate(config: dict[str, Any]) -> None:
    """One window: `workers` agents warm up, say `ready`, and run from a `go` line on stdin."""
    import anyio
    from eth_account import Account
    from mcp import Client

    from tests.replicas.helpers import signed
    from x402_mcp.client.payer import payment_meta

    payer = Account.from_key(config["payer_key"])
    urls: list[str] = config["urls"]
    mode: str = config["mode"]
    seconds: float = config["seconds"]
    presign: int = config["presign"]
    tag = secrets.token_hex(3)
    latencies: list[float] = []
    errors: list[str] = []

    async def main() -> None:
        ready = anyio.Event()
        go = anyio.Event()
        opened = 0
        deadline = 0.0
        cpu_at_go = 0.0

        async def agent(index: int) -> None:
            nonlocal opened
            quote_url = urls[(config["offset"] + index) % len(urls)]
            pay_url = urls[(config["offset"] + index + 1) % len(urls)]
            number = 0

            async def one_paid(quoter: Client, settler: Client) -> None:
                nonlocal number
                number += 1
                question = {"question": f"{tag}-{index}-{number}"}
                quoted = await quoter.call_tool("answer", question)
                meta = payment_meta(signed(payer, quoted))
                result = await settler.call_tool("answer", question, meta=meta)
                if result.is_error:
                    errors.append(str(result.content)[:300])

            async with Client(quote_url) as quoter, Client(pay_url) as settler:
                # Warm-up: sessions open, the replicas' pools and caches filled, before the window.
                if mode == "free":
                    await quoter.call_tool("ping", {})
                else:
                    await one_paid(quoter, settler)
                batch: list[tuple[dict[str, str], Any]] = []
                if mode == "presigned":
                    for ahead in range(presign):
                        question = {"question": f"{tag}-{index}-p{ahead}"}
                        quoted = await quoter.call_tool("answer", question)
                        batch.append((question, payment_meta(signed(payer, quoted))))
                opened += 1
                if opened == config["workers"]:
                    ready.set()
                await go.wait()
                if mode == "presigned":
                    for question, meta in batch:
                        start = time.perf_counter()
                        result = await settler.call_tool("answer", question, meta=meta)
                        latencies.append(time.perf_counter() - start)
                        if result.is_error:
                            errors.append(str(result.content)[:300])
                    return
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    if mode == "free":
                        if (await quoter.call_tool("ping", {})).is_error:
                            errors.append("ping failed")
                    else:
                        await one_paid(quoter, settler)
                    latencies.append(time.perf_counter() - start)

        async def starter() -> None:
            nonlocal deadline, cpu_at_go
            await ready.wait()
            print("ready", flush=True)
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if line.strip() != "go":
                raise SystemExit("the bench did not say go")
            cpu_at_go = time.process_time()
            deadline = time.perf_counter() + seconds
            go.set()

        with anyio.fail_after(seconds + 600):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(starter)
                for index in range(config["workers"]):
                    tasks.start_soon(agent, index)
        ended = time.perf_counter()
        # This process's own CPU (all threads): it exits before the bench could read /proc.
        cpu = time.process_time() - cpu_at_go
        print(
            json.dumps(
                {
                    "calls": len(latencies),
                    "errors": len(errors),
                    "first_error": errors[0] if errors else "",
                    "started": deadline - seconds,
                    "ended": ended,
                    "cpu": cpu,
                    "latencies": latencies,
                }
            ),
            flush=True,
        )

    anyio.run(main)


# ----------------------------------------------------------------------------------- CPU accounting


def _cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of `pid` (all its threads, or only `thread`), in seconds; 0 if it is gone."""
    path = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


def _postgres_backends(application_name: str) -> list[int]:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return [int(row[0]) for row in rows]


def _postgres_aux() -> list[int]:
    """The postmaster's own helpers (WAL writer, checkpointer, ...): shared with anything else."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = stat.read_bytes()
        except OSError:
            continue
        if re.match(rb"postgres: \S+: (walwriter|checkpointer|background writer)", command):
            pids.append(int(stat.parent.name))
    return pids


@dataclass
class Snapshot:
    at: float
    machine: float
    cpu: dict[str, dict[int, float]]


def _snapshot(groups: dict[str, list[int]]) -> Snapshot:
    return Snapshot(
        time.perf_counter(),
        _machine_busy(),
        {
            name: {pid: _cpu_seconds(pid, pid if name == "replica-loops" else None) for pid in pids}
            for name, pids in groups.items()
        },
    )


def _used(before: Snapshot, after: Snapshot, name: str) -> float:
    # A process that appeared during the window (a new pool connection) started at zero.
    return sum(cpu - before.cpu[name].get(pid, 0.0) for pid, cpu in after.cpu[name].items())


# ----------------------------------------------------------------------------------- chain


@dataclass
class Anvil:
    process: subprocess.Popen[bytes]
    chain: Any
    log: Path

    def log_size(self) -> int:
        return self.log.stat().st_size

    def methods_since(self, offset: int) -> Counter[str]:
        """JSON-RPC methods anvil logged (one line each) since byte `offset` of its log."""
        with self.log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        return Counter(re.findall(r"^((?:eth|anvil|evm|net|web3)_\w+)\s*$", text, re.MULTILINE))

    def block(self) -> int:
        return int(self.chain.w3.eth.block_number)


@contextmanager
def fresh_anvil(folder: Path, flags: list[str]) -> Iterator[Anvil]:
    from tests.chains import ANVIL_BINARY, running_anvil

    log_path = folder / f"anvil-{uuid.uuid4().hex[:6]}.log"
    with running_anvil(ANVIL_BINARY, log_path, flags=flags) as chain:
        assert chain.process is not None
        yield Anvil(chain.process, chain, log_path)


# ----------------------------------------------------------------------------------- one window


@dataclass
class Window:
    mode: str
    calls: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_ms: dict[str, float]  # per component, whole window
    machine_ms: float
    blocks: int
    first_error: str = ""
    rpc: dict[str, int] = field(default_factory=dict)  # JSON-RPC methods anvil served
    span: float = 0.0  # seconds between the CPU snapshots (a little longer than the window)
    # Averaged over the replicas, from their probes (REPLICA_STATS).
    limiter_held: float = 0.0
    limiter_waiting: float = 0.0
    loop_late: float = 0.0

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def per_call(self, component: str) -> float:
        return self.cpu_ms[component] / self.calls if self.calls else 0.0

    @property
    def ours_per_call(self) -> float:
        return sum(self.per_call(name) for name in COMPONENTS)

    @property
    def bound(self) -> float:
        return CORES * 1000 / self.ours_per_call if self.calls else 0.0

    @property
    def bound_servers(self) -> float:
        """The bound if the agents ran elsewhere: the servers' CPU only."""
        servers = self.ours_per_call - self.per_call("client")
        return CORES * 1000 / servers if self.calls and servers > 0 else 0.0

    @property
    def other_load(self) -> float:
        """Cores' worth of CPU used by everything that is not this figure (other work on the machine)."""
        ours = sum(self.cpu_ms.values())
        return max(0.0, self.machine_ms - ours) / 1000 / self.span if self.span else 0.0

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * quantile))]


COMPONENTS = ("client", "replicas", "anvil", "postgres")


@dataclass
class Figure:
    backend: str
    replicas: int
    windows: dict[str, Window] = field(default_factory=dict)
    profile: dict[str, float] = field(default_factory=dict)


def _probes(paths: list[Path]) -> list[dict[str, float]]:
    return [json.loads(path.read_text()) if path.exists() else {} for path in paths]


def _probe_averages(
    before: list[dict[str, float]], after: list[dict[str, float]]
) -> tuple[float, float, float]:
    """(limiter held fraction, calls waiting for it, event-loop lateness per second), per replica."""
    held, waiting, late = [], [], []
    for old, new in zip(before, after, strict=True):
        samples = new.get("samples", 0) - old.get("samples", 0)
        elapsed = new.get("at", 0) - old.get("at", 0)
        if samples <= 0 or elapsed <= 0:
            continue
        held.append((new["limiter_held"] - old["limiter_held"]) / samples)
        waiting.append((new["limiter_waiting"] - old["limiter_waiting"]) / samples)
        late.append((new["loop_late_s"] - old["loop_late_s"]) / elapsed)
    count = len(held) or 1
    return sum(held) / count, sum(waiting) / count, sum(late) / count


def _start_generators(count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, __file__, "--generator"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(count)
    ]


def _tell(process: subprocess.Popen[bytes], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line.encode() + b"\n")
    process.stdin.flush()


def _hear(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a load generator exited with {process.wait()}")
    return line.decode().strip()


def _stop_generators(generators: list[subprocess.Popen[bytes]]) -> None:
    for process in generators:
        if process.poll() is None:
            try:
                _tell(process, "quit")
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()


def _window(
    generators: list[subprocess.Popen[bytes]],
    mode: str,
    urls: list[str],
    anvil: Anvil,
    replica_pids: list[int],
    probe_paths: list[Path],
    payers: list[str],
    args: argparse.Namespace,
    application_name: str | None,
    profile_pid: int | None,
    folder: Path,
) -> tuple[Window, dict[str, float]]:
    for index, (process, key) in enumerate(zip(generators, payers, strict=True)):
        config = {
            "urls": urls,
            "mode": mode,
            "workers": args.workers,
            "seconds": args.seconds,
            "payer_key": key,
            "presign": args.presign,
            "offset": index * args.workers,
        }
        _tell(process, json.dumps(config))
    for process in generators:
        line = _hear(process)
        if line != "ready":
            raise RuntimeError(f"a load generator failed to start ({mode}): {line!r}")
    backends = _postgres_backends(application_name) if application_name else []
    groups = {
        "replicas": replica_pids,
        # The main thread runs the event loop: MCP, the gate, the ledger (psycopg async). The
        # rest of a replica's CPU is its worker threads: web3's blocking calls for settlement.
        "replica-loops": replica_pids,
        "anvil": [anvil.process.pid],
        "postgres": backends,
        "postgres-aux": _postgres_aux() if application_name else [],
    }
    spy = None
    if profile_pid is not None:
        spy = subprocess.Popen(
            [
                "uv", "run", "--quiet", "--with", "py-spy", "py-spy", "record", "--pid", str(profile_pid),
                "--format", "raw", "--rate", "200", "--duration", str(int(args.seconds)),
                "--output", str(folder / "profile.txt"), "--nonblocking", "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.5)  # uv and py-spy start before the window; they are not counted in it
    first_block = anvil.block()
    log_offset = anvil.log_size()
    probes_before = _probes(probe_paths)
    before = _snapshot(groups)
    for process in generators:
        _tell(process, "go")
    results = [json.loads(_hear(process)) for process in generators]
    if application_name:  # connections opened during the window count too
        groups["postgres"] = sorted({*backends, *_postgres_backends(application_name)})
    after = _snapshot(groups)
    blocks = anvil.block() - first_block
    methods = anvil.methods_since(log_offset)
    methods["eth_blockNumber"] -= 1  # the bench's own
    # anvil logs an eth_sendRawTransactionSync twice, also as the eth_sendRawTransaction it
    # runs inside (the recording proxy of bench_server sees one request on the wire).
    inner = min(methods["eth_sendRawTransaction"], methods["eth_sendRawTransactionSync"])
    methods["eth_sendRawTransaction"] -= inner
    time.sleep(0.3)  # the probes write every 0.25 s
    held, waiting, late = _probe_averages(probes_before, _probes(probe_paths))
    if spy is not None:
        spy.wait(timeout=120)
    started = min(r["started"] for r in results)
    ended = max(r["ended"] for r in results)
    window = Window(
        mode=mode,
        calls=sum(r["calls"] for r in results),
        errors=sum(r["errors"] for r in results),
        # The generators' own clocks (perf_counter is system-wide monotonic on Linux).
        seconds=ended - started,
        latencies=[lat for r in results for lat in r["latencies"]],
        cpu_ms={
            **{name: 1000 * _used(before, after, name) for name in groups},
            "client": 1000 * sum(r["cpu"] for r in results),
        },
        machine_ms=1000 * (after.machine - before.machine),
        blocks=blocks,
        first_error=next((r["first_error"] for r in results if r["first_error"]), ""),
        limiter_held=held,
        limiter_waiting=waiting,
        loop_late=late,
        span=after.at - before.at,
        rpc=dict(methods),
    )
    profile = _profile_summary(folder / "profile.txt") if spy is not None else {}
    if spy is not None and args.profile_out and (folder / "profile.txt").exists():
        args.profile_out.write_bytes((folder / "profile.txt").read_bytes())
    return window, profile


# ----------------------------------------------------------------------------------- py-spy summary

_PACKAGES = (
    ("x402_mcp/ledger", "x402_mcp.ledger"),
    ("x402_mcp/settlement", "x402_mcp.settlement"),
    ("x402_mcp/", "x402_mcp (gate, wire, ...)"),
    ("psycopg", "psycopg"),
    ("web3", "web3 (sync HTTP JSON-RPC)"),
    ("eth_account", "eth_account/eth_keys (signatures)"),
    ("eth_keys", "eth_account/eth_keys (signatures)"),
    ("eth_abi", "eth_abi/eth_utils/hexbytes"),
    ("eth_utils", "eth_abi/eth_utils/hexbytes"),
    ("requests", "requests/urllib3 (web3's HTTP)"),
    ("urllib3", "requests/urllib3 (web3's HTTP)"),
    ("http/client", "requests/urllib3 (web3's HTTP)"),
    ("pydantic", "pydantic"),
    ("mcp/", "mcp (server session, transport)"),
    ("starlette", "starlette/uvicorn/h11"),
    ("uvicorn", "starlette/uvicorn/h11"),
    ("h11", "starlette/uvicorn/h11"),
    ("anyio", "anyio/asyncio (event loop, threads)"),
    ("asyncio", "anyio/asyncio (event loop, threads)"),
    ("(threading.py", "thread hand-offs (queue, Condition)"),
    ("(queue.py", "thread hand-offs (queue, Condition)"),
    ("json", "json"),
    ("logging", "logging"),
)


def _package_of(frame: str) -> str:
    for needle, name in _PACKAGES:
        if needle in frame:
            return name
    return "other"


def _profile_summary(path: Path) -> dict[str, float]:
    """Share of samples by the package of the innermost known frame (py-spy's collapsed stacks).

    py-spy samples only the thread holding the GIL (`--gil`), so the shares are of
    the time the replica ran Python code; waits in select/epoll are left out too.
    """
    if not path.exists():
        return {}
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if any(word in leaf for word in ("select", "epoll", "wait (threading", "_worker (concurrent")):
            continue
        if "(threading.py)" in leaf and "wait" in leaf:
            continue
        # Charge the sample to the innermost frame that belongs to a known package.
        for frame in reversed(frames):
            package = _package_of(frame)
            if package != "other":
                break
        counts[package] += int(count)
    total = sum(counts.values())
    return {name: 100 * n / total for name, n in counts.most_common()} if total else {}


# ----------------------------------------------------------------------------------- figures


def _figure(
    backend: str, count: int, args: argparse.Namespace, folder: Path, extra_env: dict[str, str]
) -> Figure:
    from eth_account import Account

    from tests.replicas.cluster import Cluster, fresh_schema

    figure = Figure(backend + (" R" if extra_env else ""), count)
    with fresh_anvil(folder, shlex.split(args.anvil_flags)) as anvil, fresh_schema(POSTGRES_URL) as schema:
        application_name: str | None = None
        if backend == "PostgreSQL":
            application_name = f"x402bench_{uuid.uuid4().hex[:8]}"
            joiner = "&" if "?" in POSTGRES_URL else "?"
            url, pg_schema = f"{POSTGRES_URL}{joiner}application_name={application_name}", schema
        else:
            url, pg_schema = f"sqlite://{folder / f'ledger-{uuid.uuid4().hex[:6]}.sqlite'}", None
        cluster = Cluster(anvil.chain, url, pg_schema, Account.create().address, folder / "runs.txt", folder)
        group = [cluster.add() for _ in range(count)]
        probe_paths = []
        for replica in group:
            probe_paths.append(folder / f"probe-{replica.port}.json")
            replica.env["REPLICA_STATS"] = str(probe_paths[-1])
            replica.env["REPLICA_RUNS"] = ""  # the tests' record of runs: file appends, not wanted here
            replica.env.update(extra_env)
        # Started first, so their imports overlap the replicas' start.
        generators = _start_generators(args.generators)
        try:
            cluster.start(*group)
            urls = [replica.url for replica in group]
            pids = [replica.process.pid for replica in group if replica.process]
            payers = [anvil.chain.new_account(usdc="100000").key.hex() for _ in range(args.generators)]
            modes = ["free", "paid"] + (["presigned"] if args.presigned else [])
            for mode in modes:
                profile_pid = pids[0] if args.profile and mode == "paid" and count == 1 else None
                window, profile = _window(
                    generators,
                    mode,
                    urls,
                    anvil,
                    pids,
                    probe_paths,
                    payers,
                    args,
                    application_name,
                    profile_pid,
                    folder,
                )
                figure.windows[mode] = window
                if profile:
                    figure.profile = profile
                print(
                    f"  {backend} {count} replica(s) {mode:>9}: {window.rate:7.1f} calls/s "
                    f"({window.calls} calls, {window.errors} errors, "
                    f"other load {window.other_load:.2f} cores)"
                    + (f" first error: {window.first_error}" if window.errors else ""),
                    flush=True,
                )
        finally:
            _stop_generators(generators)
            cluster.stop()
    return figure


def _print(figures: list[Figure], args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\nx402-mcp replicas: streamable HTTP, {args.generators} load-generator processes x "
        f"{args.workers} agents, {args.seconds:g} s windows, {CORES} cores, fresh anvil per figure"
        + (f" ({args.anvil_flags})" if args.anvil_flags else "")
    )
    print("a paid call = challenge + sign (in the window) + paid retry settled on anvil; CPU-ms per call\n")
    header = (
        f"{'backend':<11}{'repl':>4} {'mode':<9}{'calls/s':>8}{'p50 ms':>8}{'p90 ms':>8}"
        + "".join(f"{name:>9}" for name in COMPONENTS)
        + f"{'total':>8}{'bound/s':>8}{'srv/s':>7}{'blk/s':>7}{'pg-aux':>7}{'other':>7}"
        + f"{'lim-held':>9}{'lim-wait':>9}{'late':>6}{'loop':>7}{'thr':>7}{'rpc':>6}"
    )
    print(header)
    print("-" * len(header))
    for figure in figures:
        for mode, w in figure.windows.items():
            print(
                f"{figure.backend:<11}{figure.replicas:>4} {mode:<9}{w.rate:>8.1f}{w.latency_ms(0.5):>8.1f}"
                f"{w.latency_ms(0.9):>8.1f}"
                + "".join(f"{w.per_call(name):>9.2f}" for name in COMPONENTS)
                + f"{w.ours_per_call:>8.2f}{w.bound:>8.0f}{w.bound_servers:>7.0f}{w.blocks / w.seconds:>7.1f}"
                f"{w.per_call('postgres-aux'):>7.2f}{w.other_load:>7.2f}"
                f"{w.limiter_held:>9.2f}{w.limiter_waiting:>9.2f}{w.loop_late:>6.2f}"
                f"{w.per_call('replica-loops'):>7.2f}"
                f"{w.per_call('replicas') - w.per_call('replica-loops'):>7.2f}"
                f"{sum(w.rpc.values()) / w.calls if w.calls else 0:>6.2f}"
            )
    print(
        "\ncolumns: client = load generators (MCP client, signing), replicas = the server processes,"
        "\npostgres = the replicas' backends; total = their sum; bound/s = cores x 1000 / total,"
        "\nthe most that many calls can reach if CPU is the limit; srv/s = the same without the"
        "\nclient's CPU (agents on other machines); blk/s = anvil blocks per second;"
        "\npg-aux = PostgreSQL's WAL writer and checkpointer (shared with anything else);"
        "\nother = cores' worth of CPU used by everything else on the machine during the window;"
        "\nlim-held = a replica's settlement worker tokens in use on average (JSON-RPC calls in flight),"
        "\nlim-wait = calls queued for one on average, late = how late (seconds per"
        "\nsecond) a replica's event loop ran a 10 ms timer: near 1 means its loop never idles;"
        "\nloop / thr = the replicas' CPU-ms per call in their event-loop thread (MCP, gate, ledger)"
        "\nand in worker threads (web3's blocking JSON-RPC for settlement); rpc = JSON-RPC calls per call."
    )
    for figure in figures:
        if figure.profile:
            print(f"\npy-spy, one replica ({figure.backend}, {figure.replicas} replica), paid window:")
            print("share of busy samples by package of the innermost known frame")
            for name, share in figure.profile.items():
                print(f"  {share:5.1f}%  {name}")

    result: dict[str, Any] = {}
    postgres = [f for f in figures if f.backend == "PostgreSQL"]
    for figure in postgres:
        n = figure.replicas
        result[f"free_per_s_{n}"] = round(figure.windows["free"].rate, 1)
        paid = figure.windows["paid"]
        result[f"paid_per_s_{n}"] = round(paid.rate, 1)
        result[f"paid_p50_ms_{n}"] = round(paid.latency_ms(0.5), 3)
        for name in COMPONENTS:
            result[f"cpu_ms_per_paid_call_{name}_{n}"] = round(paid.per_call(name), 3)
        result[f"cpu_ms_per_paid_call_replica_loop_{n}"] = round(paid.per_call("replica-loops"), 3)
        result[f"rpc_calls_per_paid_call_{n}"] = (
            round(sum(paid.rpc.values()) / paid.calls, 3) if paid.calls else 0
        )
        result[f"cpu_ms_per_paid_call_total_{n}"] = round(paid.ours_per_call, 3)
        result[f"bound_per_s_{n}"] = round(paid.bound, 1)
        result[f"bound_servers_only_per_s_{n}"] = round(paid.bound_servers, 1)
        result[f"anvil_blocks_per_s_{n}"] = round(paid.blocks / paid.seconds, 1)
        result[f"other_load_cores_{n}"] = round(paid.other_load, 2)
        result[f"settlement_limiter_held_{n}"] = round(paid.limiter_held, 3)
        result[f"settlement_limiter_waiting_{n}"] = round(paid.limiter_waiting, 3)
        if "presigned" in figure.windows:
            result[f"presigned_per_s_{n}"] = round(figure.windows["presigned"].rate, 1)
    for figure in figures:
        if figure.backend == "SQLite":
            result[f"sqlite_paid_per_s_{figure.replicas}"] = round(figure.windows["paid"].rate, 1)
    ones = [f for f in postgres if f.replicas == 1]
    if ones:
        base = ones[0].windows["paid"].rate
        for figure in postgres:
            if figure.replicas != 1 and base:
                result[f"paid_scaling_{figure.replicas}_vs_1"] = round(figure.windows["paid"].rate / base, 3)
    result["cores"] = CORES
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    if sys.argv[1:] == ["--generator"]:
        _generator()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short windows, 1 and 2 replicas (< 60 s)")
    parser.add_argument("--replicas", default="1,2,4", help="replica counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each timed window")
    parser.add_argument("--generators", type=int, default=2, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=8, help="concurrent agents per generator")
    parser.add_argument("--presign", type=int, default=40, help="payments per agent in the presigned row")
    parser.add_argument(
        "--presigned", action="store_true", help="add the row with payments signed beforehand"
    )
    parser.add_argument("--sqlite", action="store_true", help="also run the replicas on one SQLite file")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy a replica in the 1-replica paid window"
    )
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's collapsed stacks in this file")
    parser.add_argument("--anvil-flags", default="", help='extra anvil flags, e.g. "--prune-history"')
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 4.0)
        args.presign = min(args.presign, 10)
        if args.replicas == "1,2,4":
            args.replicas = "1,2"
    counts = [int(n) for n in args.replicas.split(",")]
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({CORES} cores)", flush=True)
    backends = ["PostgreSQL"] + (["SQLite"] if args.sqlite else [])
    figures = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for backend in backends:
            for count in counts:
                figures.append(_figure(backend, count, args, folder, {}))
    result = _print(figures, args)
    print("BENCH-RESULT " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
