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
import signal
import subprocess
import sys
import time
from contextlib import suppress
from importlib import metadata
from pathlib import Path

from bench.common import background_cpu_pct, redis_pid
from bench.harness import (
    CLIENT_SATURATED_PCT,
    KINDS,
    NOISY_OTHER_PCT,
    PY,
    ROOT,
    Context,
    Json,
    djtool,
    max_users,
    postgres_database,
    say,
)
from bench.report import targets
from bench.rlimit_exec import raise_nofile
from bench.scenarios import SCENARIOS

RESULTS = ROOT / "bench" / "results"

# Per-mode parameters. On a quiet 2-core machine: full ~10 min, quick ~2-3 min; a slow server
# is bounded by connect_budget_s and settle_max_s per scenario rather than by its speed.
PARAMS: dict[str, Json] = {
    "full": {
        "fanout_steps": [
            *(500, 1000, 1500, 2000, 3000, 5000, 7000, 10000, 14000, 20000, 28000, 40000, 56000, 80000),
            *(112000, 160000, 224000),
        ],
        "fanout_step_s": 3.0,
        "busy_room_steps": [16000, 28000, 40000, 56000, 80000, 100000, 140000, 200000],
        "notify_reps": 3,
        "dm_steps": [50, 100, 200, 400, 800],
        "dm_step_s": 4.0,
        "idle_connections": 5000,
        "idle_s": 10.0,
        "connect_budget_s": 120.0,
        "settle_max_s": 20.0,
        "year_reps": 200,
        "storm_sockets": 5000,
        "notify_many_users": 10_000,
        "storm_rate": 20,
        "year_mark_reps": 50,
    },
    "quick": {
        "fanout_steps": [500, 2000, 5000, 10000, 20000, 40000],
        "fanout_step_s": 2.0,
        "busy_room_steps": [16000, 40000, 100000],
        "notify_reps": 1,
        "dm_steps": [100, 200],
        "dm_step_s": 3.0,
        "idle_connections": 1000,
        "idle_s": 3.0,
        "connect_budget_s": 20.0,
        "settle_max_s": 5.0,
        "year_reps": 40,
        "storm_sockets": 400,
        "notify_many_users": 0,
        "storm_rate": 20,
        "year_mark_reps": 10,
    },
}


def app_missing() -> str | None:
    """Name what part of the app is not there yet, or None when it can be benchmarked."""
    needed = ["manage.py", "social/asgi.py", "dm/models.py", "notifications/services.py", "dm/consumers.py"]
    missing = [p for p in needed if not (ROOT / p).exists()]
    return f"app not present yet (missing {', '.join(missing)})" if missing else None


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
    p.add_argument(
        "--pg-database",
        default=os.environ.get("BENCH_PG_DATABASE", "social_bench"),
        metavar="NAME",
        help="PostgreSQL database the run drops and creates (default social_bench, or $BENCH_PG_DATABASE);"
        " scenario 7 adds NAME_small and NAME_large",
    )
    p.add_argument(
        "--year-reuse",
        action="store_true",
        help="scenario 7: keep NAME_small/NAME_large when they already hold the year's data (migrated again)",
    )
    p.add_argument(
        "--storm-failover",
        action="store_true",
        help="scenario 8: the clients fail over to a second running process instead of the killed one restarting",
    )
    p.add_argument("--year-seed", type=int, default=19, help="scenario 7: bench.yeardata's seed (default 19)")
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
