"""Scenario 4, idle connections: server memory per authenticated socket and idle CPU."""

from __future__ import annotations

import os

from bench.harness import LABEL, Context, Json, run_kinds, say
from bench.report import flag_other, ratio, table


def run(ctx: Context) -> Json:
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
