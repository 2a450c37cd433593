"""Scenario 1, room fan-out; its parameters, summary and table serve scenario 5 (``layers``) too."""

from __future__ import annotations

import os

from bench.harness import LABEL, Context, Json, Server, run_kinds, say
from bench.report import TARGETS, flag_client, flag_other, pct, shown, sustained, table


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


def run(ctx: Context) -> Json:
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
