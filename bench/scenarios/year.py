"""Scenario 7, a year of data: the cost of each request on the small and the large database.

Both databases come from ``bench.yeardata`` (same seed, same shape, 100x the rows); on each, a
fresh app server, then ``bench.loadgen``'s ``costs`` runs every operation one at a time as the
heavy user. The figure that matters is the ratio large/small per operation: flat cost is <= 1.5x.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.harness import (
    PY,
    ROOT,
    Context,
    Json,
    djtool,
    drop_postgres_database,
    postgres_database,
    run_loadgen,
    say,
    server,
    wait_quiet,
)
from bench.report import TARGETS, ratio, table

SIZES = ("small", "large")


@contextmanager
def app_database(ctx: Context, url: str) -> Iterator[None]:
    """Point the app's environment at another database for the duration."""
    saved = dict(ctx.app_env)
    ctx.app_env["DATABASE_URL"] = url
    try:
        yield
    finally:
        ctx.app_env.clear()
        ctx.app_env.update(saved)


def has_year(url: str, shape: str) -> bool:
    """True when the database exists and holds the shape's messages (for ``--year-reuse``)."""
    import psycopg

    from bench.yeardata import SHAPES

    try:
        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=3) as conn:
            count = conn.execute("SELECT count(*) FROM dm_message WHERE body LIKE 'Message %%'").fetchone()
    except Exception:  # noqa: BLE001 - missing database or tables: generate it
        return False
    return bool(count) and count[0] == SHAPES[shape].messages


def year_database(ctx: Context, shape: str) -> tuple[str, Json]:
    """The shape's database, migrated and filled (or reused); its URL and what the generator said."""
    name = f"{ctx.args.pg_database}_{shape}"
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    reuse = ctx.args.year_reuse and has_year(url, shape)
    if not reuse and postgres_database(ctx, name) is None:
        raise RuntimeError("PostgreSQL is not reachable")
    env = {**ctx.layer_env(ctx.args.layer), **ctx.app_env, "DATABASE_URL": url}
    migrated = subprocess.run(
        [PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed: {migrated.stderr.strip()[-500:]}")
    if reuse:
        return url, {"reused": True}
    out = subprocess.run(
        [PY, "-m", "bench.yeardata", shape, "--seed", str(ctx.args.year_seed)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.yeardata failed: {out.stderr.strip()[-500:]}")
    generated: Json = json.loads(out.stdout.strip().splitlines()[-1])
    return url, generated


def run(ctx: Context) -> Json:
    """Generate (or reuse) both databases, then time each operation on each."""
    if ctx.results.get("database") != "postgresql" or ctx.app_problem:
        return {"skipped": ctx.app_problem or "needs PostgreSQL (the year of data is generated inside it)"}
    from bench.yeardata import DM_ID, DM_PEER, HEAVY_USER, ROOM_ID, SHAPES

    sizes: Json = {}
    for shape in SIZES:
        say(f"  -> {shape} database")
        t0 = time.monotonic()
        try:
            url, generated = year_database(ctx, shape)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            sizes[shape] = {"error": str(exc)}
            say(f"     error: {exc}")
            continue
        say(f"     ready in {time.monotonic() - t0:.0f} s ({'reused' if generated.get('reused') else 'generated'})")
        with app_database(ctx, url):
            cursors = djtool(
                ctx, "year", {"user_id": HEAVY_USER, "peer_id": DM_PEER, "room_id": ROOM_ID, "dm_id": DM_ID}
            )
            ctx.cookie_name = cursors["cookie_name"]
            params = {
                **cursors,
                "reps": ctx.params["year_reps"],
                "mark_reps": ctx.params["year_mark_reps"],
                "warm": 3,
                "unread": SHAPES[shape].heavy_unread,
                "database_url": url.replace("postgres://", "postgresql://"),
            }
            wait_quiet(ctx)
            try:
                with server(ctx, "app", ctx.args.layer, f"year-{shape}") as srv:
                    ctx.runs += 1
                    result = run_loadgen(ctx, srv, "app", "costs", params, f"yr{shape[:2]}{ctx.runs}", 600.0)
            except RuntimeError as exc:
                result = {"error": str(exc)}
        sizes[shape] = {"generated": generated, "database": url.rsplit("/", 1)[1], **result}
        if "error" in result:
            say(f"     error: {result['error']}")
        sizes[shape]["jobs"] = jobs_on_a_copy(ctx, url.rsplit("/", 1)[1], HEAVY_USER)
    summary = summarize(sizes)
    say(
        "\nScenario 7: a year of data, one request at a time as the heavy user "
        f"(p50/p99 ms; flat: large/small <= {TARGETS['year_ratio']}x, p99 <= {TARGETS['year_p99_ms']:.0f} ms)"
    )
    table(
        ["operation", "small p50", "small p99", "large p50", "large p99", "p99 x small", "check (large)"],
        [
            [
                name,
                s["small_p50_ms"],
                s["small_p99_ms"],
                s["large_p50_ms"],
                s["large_p99_ms"],
                s["ratio_p99"],
                s["check"],
            ]
            for name, s in summary.items()
        ],
    )
    jobs = {shape: sizes[shape].get("jobs", {}) for shape in SIZES if shape in sizes}
    say(
        "\nBackground jobs on a copy of each database: settling the heavy user's mark-all-read,"
        " then the retention job's first prune (read notifications past 90 days)"
    )
    table(
        ["database", "settled", "settle s", "pruned", "prune s", "pruned/s", "RSS before MiB", "RSS peak MiB"],
        [
            [
                shape,
                j.get("settled"),
                j.get("settle_seconds"),
                j.get("rows"),
                j.get("prune_seconds"),
                round(j["rows"] / j["prune_seconds"]) if j.get("prune_seconds") else None,
                j.get("rss_before_mib"),
                j.get("rss_peak_mib", j.get("error")),
            ]
            for shape, j in jobs.items()
        ],
    )
    return {"sizes": sizes, "summary": summary, "shapes": {k: vars(v) for k, v in SHAPES.items()}}


def jobs_on_a_copy(ctx: Context, database: str, user_id: int) -> Json:
    """``bench.djtool jobs`` on a throwaway copy of the year's database (the prune deletes most of a year)."""
    copy = f"{database}_jobs"
    url = postgres_database(ctx, copy, template=database)
    if url is None:
        return {"error": "could not copy the database"}
    try:
        with app_database(ctx, url):
            return djtool(ctx, "jobs", {"user_id": user_id}, timeout=1800)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)[-500:]}
    finally:
        drop_postgres_database(copy)


def summarize(sizes: Json) -> Json:
    """Per operation: both sizes' p50/p99 and the large/small ratios."""
    ops = sizes.get("large", {}).get("operations") or sizes.get("small", {}).get("operations") or {}
    out: Json = {}
    for name in ops:
        small = sizes.get("small", {}).get("operations", {}).get(name, {})
        large = sizes.get("large", {}).get("operations", {}).get(name, {})
        out[name] = {
            "small_p50_ms": small.get("p50_ms"),
            "small_p99_ms": small.get("p99_ms"),
            "large_p50_ms": large.get("p50_ms"),
            "large_p99_ms": large.get("p99_ms"),
            "ratio_p50": ratio(large.get("p50_ms"), small.get("p50_ms")),
            "ratio_p99": ratio(large.get("p99_ms"), small.get("p99_ms")),
            "check": large.get("check"),
        }
    return out
