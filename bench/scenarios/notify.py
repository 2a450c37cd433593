"""Scenario 2, notification fan-out: ``notify()`` from another process, as a job would call it."""

from __future__ import annotations

import os

from bench.harness import LABEL, PY, ROOT, Context, Json, Server, run_kinds, say
from bench.report import flag_client, flag_other, median, pct, table


def run(ctx: Context) -> Json:
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
        big = int(ctx.params.get("notify_many_users", 0))
        if big > 1000 and len(ctx.app_users) >= big:
            # Connecting that many sockets takes a while; the budget is for connecting only.
            def big_for(kind: str, srv: Server) -> Json:
                return {**many_for(kind, srv), "users": big, "connect_budget_s": max(120.0, big / 20)}

            say(f"  -> app, notify_many() to {big:,} users")
            res["app_many_big"] = run_kinds(
                ctx, "notify", big_for, layer, kinds=("app",), timeout=300 + big / 10 + 30 * reps
            )["app"]
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
        "\nScenario 2: notification fan-out to 1,000 users (and notify_many to more) from another process"
        f" ({os.cpu_count()} cores; "
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
