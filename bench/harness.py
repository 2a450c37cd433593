"""What every scenario runs on: fresh server processes, the load generator against them, ``bench.djtool``.

``Context`` carries a run's options, parameters, app environment and results; ``run_kinds`` is the
loop each scenario goes through: a fresh server of each kind, one load-generator process against it,
then the server stopped by its own pid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import background_cpu_pct, free_port, wait_port

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
KINDS = ("p0", "p1", "app")
LABEL = {
    "p0": "P0 websockets",
    "p1": "P1 naive",
    "app": "app",
    "app_many": "app notify_many",
    "app_many_big": "app notify_many (big)",
}
CLIENT_SATURATED_PCT = 90.0
NOISY_OTHER_PCT = 30.0


def say(msg: str = "") -> None:
    """Print progress/output immediately."""
    print(msg, flush=True)


@dataclass
class Server:
    """A server subprocess in its own session, listening on ``port``; stopped by pid on exit."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 40.0) -> None:
        """Start and wait until the port accepts connections."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        if not wait_port(self.port, timeout, alive=lambda: self.proc is not None and self.proc.poll() is None):
            self.stop()
            raise RuntimeError(f"{self.name} did not start; last log lines:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the process group we created, SIGKILL after a grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 8.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 15) -> str:
        """Last lines of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Context:
    """Everything a scenario needs: mode, params, environment of the app, users, results."""

    args: argparse.Namespace
    mode: str
    params: Json
    run_id: str
    log_dir: Path
    redis_url: str | None
    redis_pid: int | None
    app_env: dict[str, str] = field(default_factory=dict)
    app_users: list[Json] = field(default_factory=list)
    cookie_name: str = "sessionid"
    room: str | None = None
    app_problem: str | None = None
    results: Json = field(default_factory=dict)
    background_cpu_pct: float | None = None
    # Server runs so far, for tags that never repeat within one invocation.
    runs: int = 0

    @property
    def prefix(self) -> str:
        """Channel-layer/cache prefix unique to this run, so other Redis users are not disturbed."""
        return f"bench{os.getpid()}"

    def layer_env(self, layer: str) -> dict[str, str]:
        """Environment selecting a channel layer: memory, core or pubsub."""
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CHANNEL_LAYER", "DJANGO_SETTINGS_MODULE")}
        if layer != "memory" and self.redis_url:
            env["REDIS_URL"] = self.redis_url
            env["CHANNEL_LAYER"] = layer
        env["CHANNEL_PREFIX"] = self.prefix
        env["CACHE_PREFIX"] = self.prefix
        return env


def daphne_cmd(port: int, app: str) -> list[str]:
    """Plain daphne on 127.0.0.1:port, behind the RLIMIT_NOFILE wrapper."""
    return [PY, "-m", "bench.rlimit_exec", PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]


@contextmanager
def server(ctx: Context, kind: str, layer: str, label: str = "") -> Iterator[Server]:
    """Start a fresh server of ``kind`` (p0, p1, app) with the given channel layer.

    With ``--profile`` the app server is sampled by py-spy for its whole life (see ``profile_app``).
    """
    port = free_port()
    log = ctx.log_dir / f"{label or 'run'}-{kind}-{layer}-{port}.log"
    if kind == "p0":
        env = ctx.layer_env("memory")
        cmd = [PY, "-m", "bench.rlimit_exec", PY, "-m", "bench.p0_server", "--port", str(port)]
    elif kind == "p1":
        env = {**ctx.layer_env(layer), "DJANGO_SETTINGS_MODULE": "bench.naive_settings"}
        cmd = daphne_cmd(port, "bench.naive_asgi:application")
    else:
        env = {**ctx.layer_env(layer), **ctx.app_env}
        # social.serve is how the app is deployed (its daphne limits, raised RLIMIT_NOFILE).
        if (ROOT / "social" / "serve.py").exists():
            cmd = [PY, "-m", "bench.rlimit_exec", PY, "-m", "social.serve", "--port", str(port)]
        else:
            cmd = daphne_cmd(port, "social.asgi:application")
    srv = Server(f"{kind}/{layer}", cmd, env, port, log)
    srv.start()
    spy = profile_app(ctx, srv, f"{label or 'run'}-{layer}") if kind == "app" and ctx.args.profile else None
    try:
        yield srv
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(20)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        srv.stop()
        if spy is not None:
            summarize_profile(ctx.log_dir / f"profile-{label or 'run'}-{layer}.txt")


def profile_app(ctx: Context, srv: Server, name: str) -> subprocess.Popen[bytes] | None:
    """Sample the app server with py-spy (collapsed stacks) until the server stops."""
    spy = shutil.which("py-spy", path=f"{Path(PY).parent}:{os.environ.get('PATH', '')}")
    if spy is None or srv.proc is None:
        say("     --profile: py-spy not found (pip install py-spy); not profiling")
        return None
    out = ctx.log_dir / f"profile-{name}.txt"
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(srv.proc.pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize_profile(path: Path, top: int = 30) -> None:
    """Write ``<profile>.top.txt``: the project's own functions by share of busy samples (inclusive)."""
    if not path.exists():
        return
    inclusive: Counter[str] = Counter()
    total = 0
    ours: dict[str, bool] = {}

    def project_file(where: str) -> bool:
        # py-spy prints paths relative to sys.path entries, so "dm/services.py" is ours and
        # "django/db/models/query.py" is not; bench/ itself is left out.
        if where not in ours:
            ours[where] = not where.startswith(("bench/", "/")) and (ROOT / where).is_file()
        return ours[where]

    leaf: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        threads["sync worker threads" if stack.startswith("Thread._bootstrap") else "event loop thread"] += int(count)
        leaf[stack.rsplit(";", 1)[-1].rsplit(":", 1)[0] + ")"] += int(count)
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            file = where.split(":")[0]
            if project_file(file):
                key = f"{name} ({file})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += int(count)

    def pct_of(n: int) -> str:
        return f"{100 * n / max(total, 1):5.1f}%"

    lines = [f"{total} busy samples (100/s)", *(f"{pct_of(n)}  {k}" for k, n in threads.most_common())]
    lines += ["", "app functions, inclusive:", *(f"{pct_of(n)}  {k}" for k, n in inclusive.most_common(top))]
    lines += ["", "hottest leaf functions (any code):", *(f"{pct_of(n)}  {k}" for k, n in leaf.most_common(15))]
    path.with_suffix(".top.txt").write_text("\n".join(lines) + "\n")
    say(f"     profile: {path} (summary: {path.with_suffix('.top.txt').name})")


def run_loadgen(ctx: Context, srv: Server, kind: str, scenario: str, params: Json, tag: str, timeout: float) -> Json:
    """Run the client side of one scenario against one server in its own process."""
    users = ctx.app_users if kind == "app" else synthetic_users(max_users(ctx))
    cfg = {
        "scenario": scenario,
        "tag": tag,
        "target": {
            "kind": kind,
            "port": srv.port,
            "origin": f"http://127.0.0.1:{srv.port}",
            "cookie_name": ctx.cookie_name,
        },
        "users": users,
        "pids": {"server": srv.proc.pid if srv.proc else None, "redis": ctx.redis_pid},
        "params": params,
        "timeout_s": timeout,
    }
    try:
        out = subprocess.run(
            [PY, "-m", "bench.loadgen"],
            cwd=ROOT,
            input=json.dumps(cfg),
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout + 30,
            env=srv.env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"load generator timed out after {timeout + 30:.0f} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"error": f"load generator exited {out.returncode}", "server_log": srv.log_tail()}
    result: Json = json.loads(lines[-1])
    # A scenario that kills the server on purpose (the reconnect storm) says so.
    if srv.proc is not None and srv.proc.poll() is not None and not params.get("kills_server"):
        result["error"] = f"server exited with {srv.proc.returncode}"
        result["server_log"] = srv.log_tail()
    return result


def synthetic_users(n: int) -> list[Json]:
    """Identities for the peers (no sessions; identity travels in the query string)."""
    return [{"id": i + 1, "username": f"bench{i:05d}", "session": None} for i in range(n)]


def max_users(ctx: Context) -> int:
    """How many users the selected scenarios need."""
    return max(1000, int(ctx.params["idle_connections"]), int(ctx.params.get("notify_many_users", 0)))


def djtool(ctx: Context, command: str, cfg: Json, timeout: float = 300.0) -> Json:
    """Run ``bench.djtool`` with the app's environment."""
    env = {**ctx.layer_env(ctx.args.layer), **ctx.app_env}
    out = subprocess.run(
        [PY, "-m", "bench.djtool", command],
        cwd=ROOT,
        input=json.dumps(cfg),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.djtool {command} failed:\n{out.stderr[-3000:]}")
    result: Json = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_kinds(
    ctx: Context, scenario: str, params_for: Any, layer: str, kinds: tuple[str, ...] = KINDS, timeout: float = 300.0
) -> Json:
    """Run one scenario's load generator against each server kind, each on a fresh server."""
    out: Json = {}
    kinds = tuple(kind for kind in kinds if kind in ctx.args.servers)
    # Connecting and settling are bounded separately from the scenario's own work.
    bounded = ctx.params["connect_budget_s"] + ctx.params["settle_max_s"] * 2
    for kind in kinds:
        if kind == "app" and ctx.app_problem:
            out[kind] = {"skipped": ctx.app_problem}
            continue
        say(f"  -> {LABEL[kind]} (layer {layer if kind != 'p0' else 'none'})")
        wait_quiet(ctx)
        try:
            with server(ctx, kind, layer, scenario) as srv:
                params = {
                    "connect_budget_s": ctx.params["connect_budget_s"],
                    "settle_max_s": ctx.params["settle_max_s"],
                    **params_for(kind, srv),
                }
                # Unique per server run: a message's client_id is built from the tag,
                # and a repeated one is (rightly) answered from the store, not broadcast.
                ctx.runs += 1
                tag = f"{scenario[:2]}{kind}{layer[:2]}{ctx.runs}"
                out[kind] = run_loadgen(ctx, srv, kind, scenario, params, tag, timeout + bounded)
        except RuntimeError as exc:
            out[kind] = {"error": str(exc)}
        if "error" in out[kind]:
            say(f"     error: {out[kind]['error']}")
    return out


def wait_quiet(ctx: Context) -> None:
    """With ``--wait-quiet S``: wait up to S seconds for other processes to leave the CPU alone."""
    deadline = time.monotonic() + ctx.args.wait_quiet
    while time.monotonic() < deadline:
        busy = background_cpu_pct(1.0)
        if busy < NOISY_OTHER_PCT:
            return
        say(f"     machine busy ({busy}% of a core used by other processes); waiting")
        time.sleep(4.0)


def postgres_database(ctx: Context, name: str | None = None, template: str | None = None) -> str | None:
    """Create a fresh database (``--pg-database``, default ``social_bench``; a copy of ``template``
    when given); return its URL, or None when PostgreSQL is unreachable."""
    try:
        import psycopg
    except ImportError:
        return None
    name = name or ctx.args.pg_database
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL"
        say(f"  PostgreSQL not usable ({exc.__class__.__name__}: {exc}); falling back to SQLite")
        return None
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(name: str) -> None:
    """Drop a database ``postgres_database`` made."""
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
