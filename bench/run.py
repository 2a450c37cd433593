"""Run the benchmark suite: ``python -m bench.run [--quick] [--scenario N ...]`` (``make bench``).

For every scenario it starts each server fresh (P0 plain websockets, P1 naive tutorial app on
daphne, the real app on daphne via ``social.serve``), runs the client side in a separate
``bench.loadgen`` process, stops the server, prints a table with the ratios to P0 and P1
measured in this same run, and writes everything to ``bench/results/<time>-<mode>.json``.
See docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import background_cpu_pct, free_port, redis_pid, wait_port
from bench.rlimit_exec import raise_nofile

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
KINDS = ("p0", "p1", "app")
LABEL = {"p0": "P0 websockets", "p1": "P1 naive", "app": "app", "app_many": "app notify_many"}
CLIENT_SATURATED_PCT = 90.0
NOISY_OTHER_PCT = 30.0

TARGETS = {
    "fanout_vs_p1": 3.0,
    "fanout_vs_p0": 0.5,
    "fanout_p99_ms": 100.0,
    "notify_last_ms": 250.0,
    "dm_rate": 200,
    "dm_p99_ms": 25.0,
    "idle_kib_per_conn": 50.0,
}

# Per-mode parameters. On a quiet 2-core machine: full ~10 min, quick ~2-3 min; a slow server
# is bounded by connect_budget_s and settle_max_s per scenario rather than by its speed.
PARAMS: dict[str, Json] = {
    "full": {
        "fanout_steps": [
            *(500, 1000, 1500, 2000, 3000, 5000, 7000, 10000, 14000, 20000, 28000, 40000, 56000, 80000),
            *(112000, 160000, 224000),
        ],
        "fanout_step_s": 3.0,
        "notify_reps": 3,
        "dm_steps": [50, 100, 200, 400, 800],
        "dm_step_s": 4.0,
        "idle_connections": 5000,
        "idle_s": 10.0,
        "connect_budget_s": 120.0,
        "settle_max_s": 20.0,
    },
    "quick": {
        "fanout_steps": [500, 2000, 5000, 10000, 20000, 40000],
        "fanout_step_s": 2.0,
        "notify_reps": 1,
        "dm_steps": [100, 200],
        "dm_step_s": 3.0,
        "idle_connections": 1000,
        "idle_s": 3.0,
        "connect_budget_s": 20.0,
        "settle_max_s": 5.0,
    },
}


def say(msg: str = "") -> None:
    """Print progress/output immediately."""
    print(msg, flush=True)


# -- processes ------------------------------------------------------------------------------------
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
    if srv.proc is not None and srv.proc.poll() is not None:
        result["error"] = f"server exited with {srv.proc.returncode}"
        result["server_log"] = srv.log_tail()
    return result


def synthetic_users(n: int) -> list[Json]:
    """Identities for the peers (no sessions; identity travels in the query string)."""
    return [{"id": i + 1, "username": f"bench{i:05d}", "session": None} for i in range(n)]


def max_users(ctx: Context) -> int:
    """How many users the selected scenarios need."""
    return max(1000, int(ctx.params["idle_connections"]))


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


# -- app preparation --------------------------------------------------------------------------------
def app_missing() -> str | None:
    """Name what part of the app is not there yet, or None when it can be benchmarked."""
    needed = ["manage.py", "social/asgi.py", "dm/models.py", "notifications/services.py", "dm/consumers.py"]
    missing = [p for p in needed if not (ROOT / p).exists()]
    return f"app not present yet (missing {', '.join(missing)})" if missing else None


def postgres_database(ctx: Context) -> str | None:
    """Create a fresh ``social_bench`` database; return its URL, or None when PostgreSQL is unreachable."""
    try:
        import psycopg
    except ImportError:
        return None
    name = "social_bench"
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL"
        say(f"  PostgreSQL not usable ({exc.__class__.__name__}: {exc}); falling back to SQLite")
        return None
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def prepare_app(ctx: Context) -> None:
    """Fresh database, migrations, bench users with sessions, the room and DM conversations."""
    problem = app_missing()
    if problem:
        ctx.app_problem = problem
        return
    url = None if ctx.args.db == "sqlite" else postgres_database(ctx)
    if url is None:
        if ctx.args.db == "postgres":
            raise SystemExit("--db postgres given but PostgreSQL is not reachable")
        db_file = RESULTS / "tmp" / "bench.sqlite3"
        db_file.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db_file}"
    high = "1000000"
    ctx.app_env = {
        "DJANGO_SETTINGS_MODULE": ctx.args.app_settings,
        "DATABASE_URL": url,
        # Production mode: DEBUG=1 records every query and would be measured too.
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SECRET_KEY": "bench-not-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "WS_RATE_PER_SECOND": high,
        "WS_RATE_BURST": high,
        "WS_USER_RATE_PER_SECOND": high,
        "WS_RATE_STRIKES": high,
        "WS_MAX_SOCKETS_PER_USER": high,
        "WS_CONNECTS_PER_MINUTE": high,
    }
    ctx.results["database"] = "postgresql" if url.startswith("postgres") else "sqlite"
    say(f"  database: {ctx.results['database']} ({url})")
    env = {**ctx.layer_env(ctx.args.layer), **ctx.app_env}
    t0 = time.monotonic()
    out = subprocess.run(
        [PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if out.returncode != 0:
        ctx.app_problem = (
            f"migrate failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
        )
        return
    say(f"  migrated in {time.monotonic() - t0:.1f} s")
    try:
        setup = djtool(ctx, "setup", {"users": max_users(ctx), "room_slug": "bench-room", "dm_pairs": 50})
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        ctx.app_problem = f"bench setup failed: {str(exc).strip().splitlines()[-1]}"
        return
    ctx.app_users = setup["users"]
    ctx.cookie_name = setup["cookie_name"]
    ctx.room = setup["room"]
    say(f"  {len(ctx.app_users)} users with sessions, room {ctx.room!r}, 50 DM pairs in {setup['seconds']} s")


# -- scenarios --------------------------------------------------------------------------------------
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


def fanout_params(ctx: Context) -> Json:
    """Scenario 1 parameters."""
    return {
        "members": 200,
        "senders": ctx.args.fanout_senders,
        "steps": ctx.params["fanout_steps"],
        "step_s": ctx.params["fanout_step_s"],
        "p99_limit_ms": TARGETS["fanout_p99_ms"],
        "min_delivered": 0.999,
        "stop_on_fail": True,
        "drain_idle_s": 1.0,
        "drain_max_s": 5.0,
    }


def sustained(result: Json, key: str = "ok") -> tuple[float | None, bool]:
    """Best measured deliveries/s over steps passing ``key``, and whether it is only a lower bound.

    ``key`` is ``"ok"`` (kept up with p99 within the limit) or ``"keeps_up"`` (everything delivered at
    the offered rate, p99 under 1 s). A lower bound means every configured step passed.
    """
    steps = result.get("steps", [])
    good = [s for s in steps if s.get(key)]
    if not good:
        return None, False
    return max(s.get("sustained_deliveries_per_s") or s["deliveries_per_s"] for s in good), all(
        s.get(key) for s in steps
    )


def scenario_1(ctx: Context) -> Json:
    """Room fan-out: 200 members, one sender (``--fanout-senders``), offered deliveries/s stepped."""
    base = fanout_params(ctx)

    def params_for(kind: str, srv: Server) -> Json:
        return {**base, "path": f"/ws/rooms/{ctx.room or 'bench-room'}/"}

    res = run_kinds(ctx, "fanout", params_for, ctx.args.layer, timeout=60 + len(base["steps"]) * (base["step_s"] + 8))
    senders = base["senders"]
    print_fanout(f"Scenario 1: room fan-out, 200 members, {senders} sender{'s' if senders > 1 else ''}", res)
    return {"params": base, "layer": ctx.args.layer, "servers": res, "summary": fanout_summary(res, res)}


def fanout_summary(res: Json, peers: Json) -> Json:
    """Sustained deliveries/s per server and the ratios the targets name.

    ``vs_p1`` = app within the p99 limit / P1 keeping up at all; ``vs_p0`` = both within the limit.
    """
    summary: Json = {}
    for kind, r in res.items():
        slo, slo_lb = sustained(r, "ok")
        keep, keep_lb = sustained(r, "keeps_up")
        summary[kind] = {
            "slo_deliveries_per_s": slo,
            "slo_lower_bound": slo_lb,
            "keepup_deliveries_per_s": keep,
            "keepup_lower_bound": keep_lb,
        }
    p0, p0_lb = sustained(peers.get("p0", {}), "ok")
    p1, p1_lb = sustained(peers.get("p1", {}), "keeps_up")
    for kind in res:
        value = summary[kind]["slo_deliveries_per_s"]
        summary[kind]["vs_p0"] = round(value / p0, 2) if value and p0 else None
        summary[kind]["vs_p1"] = round(value / p1, 2) if value and p1 else None
        summary[kind]["p0_is_lower_bound"] = p0_lb
        summary[kind]["p1_is_lower_bound"] = p1_lb
    return summary


def scenario_2(ctx: Context) -> Json:
    """Notification fan-out: notify() to 1,000 users (one socket each) from another process."""
    if not ctx.redis_url:
        return {"skipped": "needs Redis: notify() from another process travels through the channel layer"}
    reps = ctx.params["notify_reps"]
    layer = "core" if ctx.args.layer == "memory" else ctx.args.layer

    def params_for(kind: str, srv: Server) -> Json:
        mode = {"p0": "p0", "p1": "naive", "app": "app"}[kind]
        return {
            "users": 1000,
            "reps": reps,
            "pusher_cmd": [PY, "-m", "bench.pushers", mode],
            "pusher_config": {"port": srv.port, "gap_s": 1.5},
            "pusher_env": {"DJANGO_SETTINGS_MODULE": "bench.naive_settings"} if kind == "p1" else {},
            "pusher_timeout_s": 60 + 30 * reps,
        }

    res = run_kinds(ctx, "notify", params_for, layer, timeout=150 + 30 * reps)
    services = ROOT / "notifications" / "services.py"
    if not ctx.app_problem and services.exists() and "def notify_many(" in services.read_text():

        def many_for(kind: str, srv: Server) -> Json:
            return {**params_for(kind, srv), "pusher_cmd": [PY, "-m", "bench.pushers", "app_many"]}

        say("  -> app again, the job using notify_many() (the app's bulk path)")
        res["app_many"] = run_kinds(ctx, "notify", many_for, layer, kinds=("app",), timeout=150 + 30 * reps)["app"]
    summary: Json = {}
    p0 = res.get("p0", {}).get("last_recipient_ms_median")
    p1 = res.get("p1", {}).get("last_recipient_ms_median")
    for kind, r in res.items():
        last = r.get("last_recipient_ms_median")
        summary[kind] = {
            "last_recipient_ms_median": last,
            "last_recipient_ms_max": r.get("last_recipient_ms_max"),
            "p50_ms": r.get("latency", {}).get("p50_ms"),
            "p99_ms": r.get("latency", {}).get("p99_ms"),
            "delivered_ratio": r.get("delivered_ratio"),
            "time_vs_p0": round(last / p0, 2) if last and p0 else None,
            "time_vs_p1": round(last / p1, 2) if last and p1 else None,
        }
    say(
        f"\nScenario 2: notification fan-out to 1,000 users from another process ({os.cpu_count()} cores; "
        f"median of {reps} bursts; ratios are time, lower is better)"
    )
    table(
        [
            "server",
            "delivered",
            "last recipient ms",
            "worst ms",
            "p50 ms",
            "p99 ms",
            "pusher ms",
            "srv CPU%",
            "redis CPU%",
            "client CPU%",
            "other CPU%",
            "users",
            "x P0",
            "x P1",
        ],
        [
            [
                LABEL[k],
                pct(s["delivered_ratio"]),
                s["last_recipient_ms_median"],
                s["last_recipient_ms_max"],
                s["p50_ms"],
                s["p99_ms"],
                median([b["pusher_ms"] for b in res[k].get("bursts", [])]),
                res[k].get("server_cpu_pct"),
                res[k].get("redis_cpu_pct"),
                flag_client(res[k].get("client_cpu_pct")),
                flag_other(res[k].get("other_cpu_pct")),
                res[k].get("recipients"),
                s["time_vs_p0"],
                s["time_vs_p1"],
            ]
            if "skipped" not in res[k] and "error" not in res[k]
            else [LABEL[k], res[k].get("skipped") or res[k].get("error")]
            for k, s in summary.items()
        ],
    )
    return {"layer": layer, "servers": res, "summary": summary}


def scenario_3(ctx: Context) -> Json:
    """DMs with persistence: 50 pairs, stepped total message rate."""
    params = {
        "pairs": 50,
        "steps": ctx.params["dm_steps"],
        "step_s": ctx.params["dm_step_s"],
        "p99_limit_ms": TARGETS["dm_p99_ms"],
        "stop_on_fail": True,  # only once a step collapsed (< 50% acknowledged)
        "drain_idle_s": 1.0,
        "drain_max_s": 5.0,
    }
    res = run_kinds(
        ctx, "dm", lambda kind, srv: params, ctx.args.layer, timeout=60 + len(params["steps"]) * (params["step_s"] + 8)
    )
    app = res.get("app", {})
    if app.get("steps") and not ctx.app_problem:
        try:
            ran = [s for s in app["steps"] if not s.get("skipped")]
            counts = djtool(ctx, "count", {"prefixes": [s["body_prefix"] for s in ran]})["counts"]
            for s in ran:
                c = counts[s["body_prefix"]]
                s["stored"] = c["n"]
                s["stored_per_s"] = round(c["n"] / max(s["send_window_s"], 1e-9), 1)
                s["all_stored"] = c["n"] >= s["messages"]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            app["count_error"] = str(exc)[-500:]
    say(
        f"\nScenario 3: direct messages, 50 pairs ({os.cpu_count()} cores; the app stores every message, P0/P1 nothing)"
    )
    rows = []
    for kind, r in res.items():
        if "skipped" in r or "error" in r and not r.get("steps"):
            rows.append([LABEL[kind], r.get("skipped") or r.get("error")])
            continue
        for s in r.get("steps", []):
            if s.get("skipped"):
                rows.append([LABEL[kind], s["offered_msgs_per_s"], "skipped", "(a lower step collapsed)"])
                continue
            rows.append(
                [
                    LABEL[kind],
                    s["offered_msgs_per_s"],
                    f"{s['acked']}/{s['messages']}",
                    f"{s['received']}/{s['messages']}",
                    s.get("stored", "-"),
                    s.get("stored_per_s", "-"),
                    s["ack"]["p50_ms"],
                    s["ack"]["p99_ms"],
                    s["recipient"]["p50_ms"],
                    s["recipient"]["p99_ms"],
                    s.get("server_cpu_pct"),
                    flag_client(s.get("client_cpu_pct")),
                    flag_other(s.get("other_cpu_pct")),
                    s.get("sockets_closed"),
                    ratio(s["recipient"]["p99_ms"], dm_p99(res, "p0", s["offered_msgs_per_s"])),
                    ratio(s["recipient"]["p99_ms"], dm_p99(res, "p1", s["offered_msgs_per_s"])),
                ]
            )
    table(
        [
            "server",
            "msg/s",
            "acked",
            "received",
            "stored",
            "stored/s",
            "ack p50",
            "ack p99",
            "recv p50",
            "recv p99",
            "srv CPU%",
            "client CPU%",
            "other CPU%",
            "closed",
            "p99 x P0",
            "p99 x P1",
        ],
        rows,
    )
    return {"params": params, "layer": ctx.args.layer, "servers": res}


def dm_p99(res: Json, kind: str, rate: int) -> float | None:
    """Recipient p99 of a peer at one offered rate."""
    for s in res.get(kind, {}).get("steps", []):
        if s.get("offered_msgs_per_s") == rate and not s.get("skipped"):
            return s["recipient"]["p99_ms"]
    return None


def scenario_4(ctx: Context) -> Json:
    """Idle connections: N authenticated notification sockets; RSS per socket and idle CPU."""
    n = int(ctx.params["idle_connections"])
    params = {
        "connections": n,
        "warm": 50,
        "idle_s": ctx.params["idle_s"],
        "settle_s": 2.0,
        "concurrency": 32,
        "redis_url": ctx.redis_url,
    }
    res = run_kinds(ctx, "idle", lambda kind, srv: params, ctx.args.layer, timeout=240 + n / 20)
    say(f"\nScenario 4: {n} idle notification sockets ({os.cpu_count()} cores; app sockets carry a session cookie)")
    rows = []
    for kind, r in res.items():
        if "skipped" in r or "error" in r:
            rows.append([LABEL[kind], r.get("skipped") or r.get("error")])
            continue
        rows.append(
            [
                LABEL[kind],
                r["connections"],
                r["connect"]["per_s"],
                r["connect"]["handshake"]["p99_ms"],
                r["server_rss_baseline_mib"],
                r["server_rss_mib"],
                r["server_kib_per_conn"],
                r.get("redis_bytes_per_conn"),
                r.get("server_cpu_pct"),
                flag_other(r.get("other_cpu_pct")),
                r["still_open_after_idle"],
                ratio(r["server_kib_per_conn"], res.get("p0", {}).get("server_kib_per_conn")),
                ratio(r["server_kib_per_conn"], res.get("p1", {}).get("server_kib_per_conn")),
            ]
        )
    table(
        [
            "server",
            "sockets",
            "connects/s",
            "connect p99 ms",
            "RSS base MiB",
            "RSS MiB",
            "KiB/socket",
            "redis B/socket",
            "idle CPU%",
            "other CPU%",
            "open after idle",
            "x P0",
            "x P1",
        ],
        rows,
    )
    return {"params": params, "layer": ctx.args.layer, "servers": res}


def scenario_5(ctx: Context) -> Json:
    """Scenario 1 on the app with the in-memory, Redis core and Redis pub/sub layers."""
    base = fanout_params(ctx)
    s1 = ctx.results.get("scenarios", {}).get("1", {})
    # P0 has no layer; P1 is compared on the tutorial's RedisChannelLayer.
    reusable = ("p0", "p1") if s1.get("layer") == "core" else ("p0",)
    peers = {k: v for k, v in s1.get("servers", {}).items() if k in reusable}
    missing_peers = tuple(k for k in ("p0", "p1") if k not in peers)
    timeout = 60 + len(base["steps"]) * (base["step_s"] + 8)

    def params_for(kind: str, srv: Server) -> Json:
        return {**base, "path": f"/ws/rooms/{ctx.room or 'bench-room'}/"}

    if missing_peers:
        peers.update(run_kinds(ctx, "fanout", params_for, "core", kinds=missing_peers, timeout=timeout))
    layers: Json = {}
    for layer in ("memory", "core", "pubsub"):
        if layer != "memory" and not ctx.redis_url:
            layers[layer] = {"skipped": "Redis not reachable"}
            continue
        if layer == s1.get("layer") and "app" in s1.get("servers", {}):
            layers[layer] = s1["servers"]["app"]
            say(f"  -> app (layer {layer}): reusing scenario 1's run")
            continue
        layers[layer] = run_kinds(ctx, "fanout", params_for, layer, kinds=("app",), timeout=timeout)["app"]
    rows = {f"app/{layer}": r for layer, r in layers.items()}
    print_fanout(
        "Scenario 5: channel layers for room fan-out (P0/P1 as in scenario 1, P1 on the Redis core layer)",
        {**peers, **rows},
    )
    return {"params": base, "peers": peers, "layers": layers, "summary": fanout_summary(rows, peers)}


# -- output -----------------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    """0.99731 -> '99.73%'."""
    return "-" if x is None else f"{100 * x:.2f}%"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded, or None."""
    return round(a / b, 2) if a is not None and b else None


def median(values: list[float]) -> float | None:
    """Median of a list, or None."""
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def flag_client(cpu: float | None) -> str:
    """Client CPU with a '!' when the client saturated its core (its figures are then a floor)."""
    if cpu is None:
        return "-"
    return f"{cpu}!" if cpu >= CLIENT_SATURATED_PCT else f"{cpu}"


def flag_other(cpu: float | None) -> str:
    """CPU used by processes outside the bench, with a '!' when it was enough to skew the figures."""
    if cpu is None:
        return "-"
    return f"{cpu}!" if cpu >= NOISY_OTHER_PCT else f"{cpu}"


def table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print a plain fixed-width table; a row shorter than the header is a note (label, offered, text)."""
    cells = [[str("-" if c is None else c) for c in row] for row in rows]
    full = [r for r in cells if len(r) == len(headers)]
    widths = [max([len(h)] + [len(r[i]) for r in full]) for i, h in enumerate(headers)]
    say("  " + "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for r in cells:
        if len(r) == len(headers):
            say("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        elif len(r) >= 3:
            say("  " + "  ".join(c.rjust(w) for c, w in zip(r[:2], widths, strict=False)) + "  " + " ".join(r[2:]))
        else:
            say("  " + r[0].rjust(widths[0]) + "  " + " ".join(r[1:]))


def print_fanout(title: str, res: Json) -> None:
    """Per-step table and the sustained summary for fan-out results."""
    say(f"\n{title} ({os.cpu_count()} cores)")
    rows = []
    for name, r in res.items():
        label = LABEL.get(name, name)
        if "skipped" in r or ("error" in r and not r.get("steps")):
            rows.append([label, r.get("skipped") or r.get("error")])
            continue
        for s in r.get("steps", []):
            if s.get("skipped"):
                rows.append([label, s["offered_deliveries_per_s"], "skipped", "(a lower step failed)"])
                continue
            rows.append(
                [
                    label,
                    s["offered_deliveries_per_s"],
                    s["messages_per_s"],
                    pct(s["delivered_ratio"]),
                    s["deliveries_per_s"],
                    s["p50_ms"],
                    s["p99_ms"],
                    s["max_ms"],
                    s.get("server_cpu_pct"),
                    s.get("redis_cpu_pct"),
                    flag_client(s.get("client_cpu_pct")),
                    flag_other(s.get("other_cpu_pct")),
                    s.get("closed_during_step"),
                    "ok" if s["ok"] else "slow" if s.get("keeps_up") else "FAIL",
                ]
            )
    table(
        [
            "server",
            "offered/s",
            "msgs/s",
            "delivered",
            "deliveries/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "srv CPU%",
            "redis CPU%",
            "client CPU%",
            "other CPU%",
            "closed",
            "pass",
        ],
        rows,
    )
    peers = {k: v for k, v in res.items() if k in ("p0", "p1")}
    summary = fanout_summary(res, peers)
    say(
        f"  pass: ok = >= 99.9% delivered, p99 <= {TARGETS['fanout_p99_ms']:.0f} ms, no socket closed;"
        " slow = >= 99.9% delivered to the sockets still open, p99 <= 1 s;\n"
        "  within limit = highest offered deliveries/s of an 'ok' step; keeps up = of an 'ok' or 'slow' step;"
        " '>=' = the top step passed, the ceiling is higher"
    )
    for name, s in summary.items():
        say(
            f"    {LABEL.get(name, name):>16}: within limit "
            f"{shown(s['slo_deliveries_per_s'], s['slo_lower_bound']):>10}"
            f"  keeps up {shown(s['keepup_deliveries_per_s'], s['keepup_lower_bound']):>10}"
            f"  | / P0 within limit = {s['vs_p0']}{' (P0 ceiling not reached)' if s['p0_is_lower_bound'] else ''}"
            f"  / P1 keeps up = {s['vs_p1']}"
        )


def shown(value: float | None, lower_bound: bool) -> str:
    """12345.6 -> '12346/s', with '>=' when the figure is only a lower bound."""
    return "none" if value is None else f"{'>=' if lower_bound else ''}{value:.0f}/s"


def targets(ctx: Context) -> list[Json]:
    """The issue's targets next to the measured figures."""
    sc = ctx.results.get("scenarios", {})
    out: list[Json] = []
    s1 = sc.get("1", {}).get("summary", {}).get("app")
    # The target is stated for one sender; runs with more are reported, not judged.
    one_sender = sc.get("1", {}).get("params", {}).get("senders", 1) == 1
    if s1 and one_sender and "skipped" not in sc["1"]["servers"].get("app", {}):
        ok = (s1["vs_p1"] or 0) >= TARGETS["fanout_vs_p1"] and (s1["vs_p0"] or 0) >= TARGETS["fanout_vs_p0"]
        out.append(
            {
                "target": "room fan-out: deliveries/s at p99 <= 100 ms >= 3x P1's sustained and >= 0.5x P0's",
                "measured": f"app {shown(s1['slo_deliveries_per_s'], s1['slo_lower_bound'])} within the limit "
                f"(keeps up: {shown(s1['keepup_deliveries_per_s'], s1['keepup_lower_bound'])}); "
                f"P1 keeps up: {shown(*sustained(sc['1']['servers'].get('p1', {}), 'keeps_up'))}, "
                f"P0 within the limit: {shown(*sustained(sc['1']['servers'].get('p0', {}), 'ok'))}; "
                f"ratios {s1['vs_p1']}x P1, {s1['vs_p0']}x P0",
                "met": ok,
            }
        )
    for kind, call in (("app", "notify() per user"), ("app_many", "notify_many() once")):
        s2 = sc.get("2", {}).get("summary", {}).get(kind)
        if s2 and s2.get("last_recipient_ms_median") is not None:
            out.append(
                {
                    "target": f"notification fan-out to 1,000 users ({call}): last recipient within 250 ms",
                    "measured": f"median {s2['last_recipient_ms_median']} ms, worst {s2['last_recipient_ms_max']} ms, "
                    f"p50 {s2['p50_ms']} / p99 {s2['p99_ms']} ms per recipient",
                    "met": s2["last_recipient_ms_median"] <= TARGETS["notify_last_ms"],
                }
            )
    for s in sc.get("3", {}).get("servers", {}).get("app", {}).get("steps", []):
        if s.get("offered_msgs_per_s") == TARGETS["dm_rate"] and s.get("skipped"):
            out.append(
                {
                    "target": "DMs at 200 msg/s: p99 <= 25 ms, every message stored",
                    "measured": "not reached: a lower rate already collapsed",
                    "met": False,
                }
            )
        elif s.get("offered_msgs_per_s") == TARGETS["dm_rate"]:
            measured = [x for x in (s["ack"]["p99_ms"], s["recipient"]["p99_ms"]) if x is not None]
            worst = max(measured) if measured else None
            out.append(
                {
                    "target": "DMs at 200 msg/s: p99 <= 25 ms, every message stored",
                    "measured": f"ack p99 {s['ack']['p99_ms']} ms, recipient p99 {s['recipient']['p99_ms']} ms, "
                    f"stored {s.get('stored')}/{s['messages']}",
                    "met": worst is not None and worst <= TARGETS["dm_p99_ms"] and bool(s.get("all_stored")),
                }
            )
    s4 = sc.get("4", {}).get("servers", {}).get("app", {})
    if "server_kib_per_conn" in s4:
        out.append(
            {
                "target": "idle: <= 50 KiB server memory per authenticated socket",
                "measured": f"{s4['server_kib_per_conn']} KiB/socket ({s4['connections']} sockets), "
                f"idle CPU {s4.get('server_cpu_pct')}%",
                "met": s4["server_kib_per_conn"] <= TARGETS["idle_kib_per_conn"],
            }
        )
    return out


def meta(ctx: Context) -> Json:
    """Machine and software facts recorded with every result file."""
    versions = {}
    for pkg in ("Django", "channels", "channels-redis", "daphne", "websockets", "redis", "psycopg", "Twisted"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    model = ""
    with suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "run_id": ctx.run_id,
        "mode": ctx.mode,
        "argv": sys.argv[1:],
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "redis": ctx.redis_url,
        "default_layer": ctx.args.layer,
        "app_settings": ctx.args.app_settings,
        "database": ctx.results.get("database"),
        "app_problem": ctx.app_problem,
        "background_cpu_pct_before_run": ctx.background_cpu_pct,
        "legend": {
            "client_cpu_pct": f"load generator, % of one core; '!' >= {CLIENT_SATURATED_PCT}: client-bound",
            "other_cpu_pct": f"processes outside the bench, % of one core; '!' >= {NOISY_OTHER_PCT}: noisy",
        },
    }


def cleanup_redis(ctx: Context) -> None:
    """Delete the keys this run left in Redis (all carry the run's own prefix)."""
    if not ctx.redis_url:
        return
    with suppress(Exception):
        import redis

        client = redis.Redis.from_url(ctx.redis_url, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{ctx.prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])


SCENARIOS = {1: scenario_1, 2: scenario_2, 3: scenario_3, 4: scenario_4, 5: scenario_5}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer steps, shorter windows, 1,000 idle sockets")
    p.add_argument(
        "--scenario",
        type=int,
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable); default all",
    )
    p.add_argument(
        "--db",
        choices=("auto", "postgres", "sqlite"),
        default="auto",
        help="app database: PostgreSQL when reachable (auto), or force one",
    )
    p.add_argument(
        "--layer",
        choices=("core", "pubsub", "memory"),
        default="pubsub",
        help="channel layer for scenarios 1-4 (default: RedisPubSubChannelLayer, the app's default)",
    )
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--idle-connections", type=int, help="override the socket count of scenario 4")
    p.add_argument(
        "--fanout-senders",
        type=int,
        default=1,
        metavar="N",
        help="room members that send in turn in scenarios 1 and 5 (default 1, as the target states)",
    )
    p.add_argument(
        "--fanout-steps",
        type=lambda text: [int(step) for step in text.split(",")],
        metavar="N,N,...",
        help="override the offered deliveries/s of scenarios 1 and 5",
    )
    p.add_argument(
        "--servers",
        type=lambda text: tuple(text.split(",")),
        default=KINDS,
        metavar="KIND,...",
        help="run only these of p0,p1,app (for diagnosis: ratios and targets need all three)",
    )
    p.add_argument(
        "--app-settings",
        default="social.settings",
        help="settings module for the app (e.g. bench.whatif_settings to try suggested tuning)",
    )
    p.add_argument("--profile", action="store_true", help="sample the app server with py-spy; summaries in the log dir")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each server, wait up to S seconds for other processes to use < 30%% of a core",
    )
    p.add_argument("--out", type=Path, help="result file (default bench/results/<time>-<mode>.json)")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios and write the result file."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every server is stopped by the context managers.
    signal.signal(signal.SIGTERM, _interrupt)
    mode = "quick" if args.quick else "full"
    params = dict(PARAMS[mode])
    if args.idle_connections:
        params["idle_connections"] = args.idle_connections
    if args.fanout_steps:
        params["fanout_steps"] = args.fanout_steps
    # The load generator holds every socket in one process: stay under its descriptor limit.
    fd_limit = raise_nofile()
    if params["idle_connections"] > fd_limit - 200:
        params["idle_connections"] = max(1000, fd_limit - 200)
        say(f"RLIMIT_NOFILE is {fd_limit}: scenario 4 capped at {params['idle_connections']} sockets")
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rpid = redis_pid(args.redis_url)
    ctx = Context(
        args=args,
        mode=mode,
        params=params,
        run_id=run_id,
        log_dir=RESULTS / "logs" / run_id,
        redis_url=args.redis_url if rpid else None,
        redis_pid=rpid,
    )
    if not ctx.redis_url and args.layer != "memory":
        say("Redis not reachable: using the in-memory layer; scenario 2 and the Redis layers are skipped")
        args.layer = "memory"
    out_path = args.out or RESULTS / f"{run_id}-{mode}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    chosen = sorted(set(args.scenario or SCENARIOS))
    say(
        f"bench {mode}: scenarios {chosen}, {os.cpu_count()} cores, layer {args.layer}, redis {ctx.redis_url or 'none'}"
    )
    say(
        f"  '!' after client CPU% = load generator used >= {CLIENT_SATURATED_PCT:.0f}% of a core (figures are a floor);"
        f" '!' after other CPU% = processes outside the bench used >= {NOISY_OTHER_PCT:.0f}% of a core (noisy)"
    )
    t0 = time.monotonic()
    ctx.background_cpu_pct = background_cpu_pct()
    if ctx.background_cpu_pct >= NOISY_OTHER_PCT:
        say(
            f"warning: the machine is already busy ({ctx.background_cpu_pct}% of one core used by other processes);"
            " figures will be noisy (see the 'other CPU%' columns)"
        )
    say("preparing the app")
    prepare_app(ctx)
    if ctx.app_problem:
        say(f"  app rows skipped: {ctx.app_problem}")
    ctx.results.update(meta=meta(ctx), scenarios={})
    for number in chosen:
        say(f"\n=== scenario {number} ===")
        started = time.monotonic()
        ctx.results["scenarios"][str(number)] = SCENARIOS[number](ctx)
        ctx.results["scenarios"][str(number)]["seconds"] = round(time.monotonic() - started, 1)
        ctx.results["targets"] = targets(ctx)
        out_path.write_text(json.dumps(ctx.results, indent=1))
    ctx.results["seconds"] = round(time.monotonic() - t0, 1)
    out_path.write_text(json.dumps(ctx.results, indent=1))
    cleanup_redis(ctx)
    say("\nTargets (app, measured in this run):")
    for t in ctx.results.get("targets", []):
        say(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['measured']}")
    if not ctx.results.get("targets"):
        say("  none measured" + (f" ({ctx.app_problem})" if ctx.app_problem else ""))
    say(
        f"\nresults: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path} "
        f"({ctx.results['seconds']:.0f} s; server logs in {ctx.log_dir.relative_to(ROOT)})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped; partial results (if any) are in bench/results/", file=sys.stderr)
        sys.exit(130)
