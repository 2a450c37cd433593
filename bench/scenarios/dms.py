"""Scenario 3, direct messages with persistence: every message the app acknowledged is counted in its database."""

from __future__ import annotations

import os
import subprocess

from bench.harness import LABEL, Context, Json, djtool, run_kinds, say
from bench.report import TARGETS, flag_client, flag_other, ratio, table


def run(ctx: Context) -> Json:
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
