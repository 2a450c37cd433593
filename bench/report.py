"""The report: the tables a run prints, its verdicts against the targets, and a result file as Markdown.

``python -m bench.report bench/results/<run>.json`` renders a result file as Markdown. Used to
paste a recorded run into docs/benchmarks.md, so the document shows exactly what the JSON holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.harness import CLIENT_SATURATED_PCT, LABEL, NOISY_OTHER_PCT, Context, Json, say

TARGETS = {
    "fanout_vs_p1": 3.0,
    "fanout_vs_p0": 0.5,
    "fanout_p99_ms": 100.0,
    "busy_room_vs_p0": 0.8,
    "busy_room_p99_ms": 100.0,
    "notify_last_ms": 250.0,
    "dm_rate": 200,
    "dm_p99_ms": 25.0,
    "idle_kib_per_conn": 32.0,
    "notify_many_big_last_ms": 1000.0,
    "year_ratio": 1.5,
    "storm_s": 15.0,
    "storm_vs_p0": 3.0,
    "year_p99_ms": 25.0,
}


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
    s6 = sc.get("6", {}).get("summary", {}).get("app")
    if s6 and "skipped" not in sc["6"]["servers"].get("app", {}):
        out.append(
            {
                "target": "busy room (a sender per 10 msg/s): deliveries/s at p99 <= 100 ms, all delivered,"
                " >= 0.8x P0's",
                "measured": f"app {shown(s6['slo_deliveries_per_s'], s6['slo_lower_bound'])} within the limit "
                f"(keeps up: {shown(s6['keepup_deliveries_per_s'], s6['keepup_lower_bound'])}); "
                f"P0 within the limit: {shown(*sustained(sc['6']['servers'].get('p0', {}), 'ok'))}; "
                f"ratio {s6['vs_p0']}x P0",
                "met": (s6["vs_p0"] or 0) >= TARGETS["busy_room_vs_p0"],
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
    big = sc.get("2", {}).get("summary", {}).get("app_many_big")
    if big and big.get("last_recipient_ms_median") is not None:
        users = sc["2"]["servers"]["app_many_big"].get("recipients")
        out.append(
            {
                "target": f"notify_many() to {users:,} connected users: last delivery within 1 s",
                "measured": f"median {big['last_recipient_ms_median']} ms, worst {big['last_recipient_ms_max']} ms, "
                f"delivered {pct(big['delivered_ratio'])}",
                "met": big["last_recipient_ms_median"] <= TARGETS["notify_many_big_last_ms"]
                and (big["delivered_ratio"] or 0) >= 1.0,
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
                "target": f"idle: <= {TARGETS['idle_kib_per_conn']:.0f} KiB server memory per authenticated socket",
                "measured": f"{s4['server_kib_per_conn']} KiB/socket ({s4['connections']} sockets), "
                f"idle CPU {s4.get('server_cpu_pct')}%",
                "met": s4["server_kib_per_conn"] <= TARGETS["idle_kib_per_conn"],
            }
        )
    return out + year_targets(sc) + storm_targets(sc)


def year_targets(sc: Json) -> list[Json]:
    """Scenario 7: per operation, large/small p99 within 1.5x and the large p99 within 25 ms."""
    out = []
    for name, s in sc.get("7", {}).get("summary", {}).items():
        if s.get("large_p99_ms") is None or s.get("small_p99_ms") is None:
            continue
        out.append(
            {
                "target": f"year of data, {name}: large/small p99 <= {TARGETS['year_ratio']}x "
                f"and p99 <= {TARGETS['year_p99_ms']:.0f} ms",
                "measured": f"p99 {s['small_p99_ms']} -> {s['large_p99_ms']} ms ({s['ratio_p99']}x); "
                f"p50 {s['small_p50_ms']} -> {s['large_p50_ms']} ms",
                "met": (s["ratio_p99"] or 99) <= TARGETS["year_ratio"] and s["large_p99_ms"] <= TARGETS["year_p99_ms"],
            }
        )
    return out


def storm_targets(sc: Json) -> list[Json]:
    """Scenario 8: every socket back and resumed in time, nothing lost or doubled, none refused."""
    app = sc.get("8", {}).get("servers", {}).get("app")
    if not app or "resumed" not in app:
        return []
    back = app.get("all_back_s")
    return [
        {
            "target": f"reconnect storm ({app['sockets']} sockets, SIGKILL + {app.get('mode', 'restart')}): all back "
            "and resumed within "
            f"{TARGETS['storm_s']:.0f} s and {TARGETS['storm_vs_p0']:.0f}x P0, 0 lost or doubled, none refused (4429)",
            "measured": f"{app['resumed']}/{app['sockets']} back, all within {back} s ({app.get('vs_p0')}x P0); "
            f"{app['sent']} sent, {app['lost']} lost, {app['doubled']} doubled, {app['refused_flooding']} refused",
            "met": back is not None
            and app["resumed"] == app["sockets"]
            and back <= TARGETS["storm_s"]
            and (app.get("vs_p0") or 99) <= TARGETS["storm_vs_p0"]
            and app["lost"] == 0
            and app["doubled"] == 0
            and app["refused_flooding"] == 0
            and app.get("send_errors", 0) == 0,
        }
    ]


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; None prints as '-'."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join("-" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _label(name: str) -> str:
    return LABEL.get(name, name)


def fanout_rows(servers: Json) -> list[list[Any]]:
    """One row per step that ran, per server."""
    rows = []
    for name, r in servers.items():
        if "skipped" in r or ("error" in r and not r.get("steps")):
            rows.append([_label(name), r.get("skipped") or r.get("error")] + [None] * 9)
            continue
        for s in r.get("steps", []):
            if s.get("skipped"):
                continue
            verdict = "ok" if s["ok"] else "slow" if s.get("keeps_up") else "FAIL"
            rows.append(
                [
                    _label(name),
                    s["offered_deliveries_per_s"],
                    f"{100 * s['delivered_ratio']:.2f}%",
                    s["p50_ms"],
                    s["p99_ms"],
                    s.get("server_cpu_pct"),
                    s.get("redis_cpu_pct"),
                    s.get("client_cpu_pct"),
                    s.get("other_cpu_pct"),
                    s.get("closed_during_step"),
                    verdict,
                ]
            )
    return rows


FANOUT_HEADERS = [
    "server",
    "offered/s",
    "delivered",
    "p50 ms",
    "p99 ms",
    "srv CPU%",
    "redis CPU%",
    "client CPU%",
    "other CPU%",
    "closed",
    "pass",
]


def fanout_summary_rows(servers: Json) -> list[list[Any]]:
    """Within-limit and keeps-up figures per server."""
    return [[_label(name), shown(*sustained(r, "ok")), shown(*sustained(r, "keeps_up"))] for name, r in servers.items()]


def render(results: Json) -> str:
    """The whole run as Markdown."""
    meta = results.get("meta", {})
    sc = results.get("scenarios", {})
    parts = [
        f"Run `{meta.get('run_id')}` ({meta.get('mode')}), {meta.get('cores')} cores ({meta.get('cpu')}), "
        f"Python {meta.get('python')}, database {meta.get('database')}, layer {meta.get('default_layer')}, "
        f"app settings `{meta.get('app_settings')}`; other processes used {meta.get('background_cpu_pct_before_run')}% "
        f"of a core just before the run; {results.get('seconds')} s in all.",
        "",
        md_table(
            ["target", "measured", "met"],
            [[t["target"], t["measured"], "yes" if t["met"] else "**no**"] for t in results.get("targets", [])],
        ),
    ]
    if "1" in sc:
        servers = sc["1"]["servers"]
        parts += [
            "",
            "**1. Room fan-out** (200 members, 1 sender):",
            "",
            md_table(["server", "within limit", "keeps up"], fanout_summary_rows(servers)),
            "",
            md_table(FANOUT_HEADERS, fanout_rows(servers)),
        ]
    if "2" in sc and "servers" in sc["2"]:
        rows = []
        for name, r in sc["2"]["servers"].items():
            if "skipped" in r or "error" in r:
                rows.append([_label(name), r.get("skipped") or r.get("error")] + [None] * 8)
                continue
            s = sc["2"]["summary"][name]
            pusher = sorted(b["pusher_ms"] for b in r.get("bursts", []))
            rows.append(
                [
                    _label(name),
                    r.get("recipients"),
                    f"{100 * (r.get('delivered_ratio') or 0):.2f}%",
                    s["last_recipient_ms_median"],
                    s["last_recipient_ms_max"],
                    s["p50_ms"],
                    s["p99_ms"],
                    pusher[len(pusher) // 2] if pusher else None,
                    r.get("server_cpu_pct"),
                    r.get("other_cpu_pct"),
                ]
            )
        parts += [
            "",
            "**2. Notification fan-out** (one notification per user per burst, from another process):",
            "",
            md_table(
                [
                    "server",
                    "users",
                    "delivered",
                    "last recipient ms (median)",
                    "worst ms",
                    "p50 ms",
                    "p99 ms",
                    "pusher ms",
                    "srv CPU%",
                    "other CPU%",
                ],
                rows,
            ),
        ]
    if "3" in sc and "servers" in sc["3"]:
        rows = []
        for name, r in sc["3"]["servers"].items():
            if "skipped" in r or ("error" in r and not r.get("steps")):
                rows.append([_label(name), r.get("skipped") or r.get("error")] + [None] * 10)
                continue
            for s in r.get("steps", []):
                if s.get("skipped"):
                    rows.append(
                        [_label(name), s["offered_msgs_per_s"], "skipped (a lower rate collapsed)"] + [None] * 8
                    )
                    continue
                rows.append(
                    [
                        _label(name),
                        s["offered_msgs_per_s"],
                        f"{s['acked']}/{s['messages']}",
                        f"{s['received']}/{s['messages']}",
                        s.get("stored"),
                        s["ack"]["p50_ms"],
                        s["ack"]["p99_ms"],
                        s["recipient"]["p50_ms"],
                        s["recipient"]["p99_ms"],
                        s.get("server_cpu_pct"),
                        s.get("other_cpu_pct"),
                    ]
                )
        parts += [
            "",
            "**3. Direct messages** (50 pairs; only the app stores):",
            "",
            md_table(
                [
                    "server",
                    "msg/s",
                    "acked",
                    "received",
                    "stored",
                    "ack p50",
                    "ack p99",
                    "recv p50",
                    "recv p99",
                    "srv CPU%",
                    "other CPU%",
                ],
                rows,
            ),
        ]
    if "4" in sc and "servers" in sc["4"]:
        rows = []
        for name, r in sc["4"]["servers"].items():
            if "skipped" in r or "error" in r:
                rows.append([_label(name), r.get("skipped") or r.get("error")] + [None] * 7)
                continue
            rows.append(
                [
                    _label(name),
                    r["connections"],
                    r["connect"]["per_s"],
                    r["connect"]["handshake"]["p99_ms"],
                    r["server_kib_per_conn"],
                    r.get("redis_bytes_per_conn"),
                    r.get("server_cpu_pct"),
                    r["still_open_after_idle"],
                    r.get("other_cpu_pct"),
                ]
            )
        parts += [
            "",
            f"**4. Idle connections** ({sc['4']['params']['connections']} wanted):",
            "",
            md_table(
                [
                    "server",
                    "sockets",
                    "connects/s",
                    "connect p99 ms",
                    "KiB/socket",
                    "Redis B/socket",
                    "idle CPU%",
                    "open after idle",
                    "other CPU%",
                ],
                rows,
            ),
        ]
    if "5" in sc and "layers" in sc["5"]:
        servers = {**sc["5"].get("peers", {}), **{f"app/{k}": v for k, v in sc["5"]["layers"].items()}}
        parts += [
            "",
            "**5. Channel layers** (scenario 1 on the app):",
            "",
            md_table(["server", "within limit", "keeps up"], fanout_summary_rows(servers)),
            "",
            md_table(FANOUT_HEADERS, fanout_rows({k: v for k, v in servers.items() if k.startswith("app/")})),
        ]
    if "7" in sc and "summary" in sc["7"]:
        gen = {k: v.get("generated", {}) for k, v in sc["7"].get("sizes", {}).items()}
        parts += [
            "",
            "**7. A year of data** (one request at a time as the heavy user; ms):",
            "",
            md_table(
                ["database", "messages", "notifications", "generated in s"],
                [
                    [
                        k,
                        g.get("counts", {}).get("dm_message"),
                        g.get("counts", {}).get("notifications_notification"),
                        "reused" if g.get("reused") else g.get("seconds"),
                    ]
                    for k, g in gen.items()
                ],
            ),
            "",
            md_table(
                ["operation", "small p50", "small p99", "large p50", "large p99", "p50 x", "p99 x", "check (large)"],
                [
                    [
                        name,
                        s["small_p50_ms"],
                        s["small_p99_ms"],
                        s["large_p50_ms"],
                        s["large_p99_ms"],
                        s["ratio_p50"],
                        s["ratio_p99"],
                        s["check"],
                    ]
                    for name, s in sc["7"]["summary"].items()
                ],
            ),
        ]
    if "8" in sc and "servers" in sc["8"]:
        rows = []
        for name, r in sc["8"]["servers"].items():
            if "resumed" not in r:
                rows.append([_label(name), r.get("error") or r.get("skipped")] + [None] * 11)
                continue
            rows.append(
                [
                    _label(name),
                    r["sockets"],
                    r.get("accepting_s"),
                    r["resumed"],
                    r["all_back_s"],
                    r["resume"]["p50_ms"],
                    r["resume"]["p99_ms"],
                    r["sent"],
                    r["lost"],
                    r["doubled"],
                    r["refused_flooding"],
                    r.get("vs_p0"),
                ]
            )
        parts += [
            "",
            f"**8. Reconnect storm** ({sc['8']['sockets']} sockets, SIGKILL then "
            f"{'fail-over to a second process' if sc['8'].get('mode') == 'failover' else 'restart'};"
            " seconds from the kill; 'accepting' = until the port took connections again):",
            "",
            md_table(
                [
                    "server",
                    "sockets",
                    "accepting s",
                    "back",
                    "all back s",
                    "p50 (ms)",
                    "p99 (ms)",
                    "sent",
                    "lost",
                    "doubled",
                    "refused 4429",
                    "x P0",
                ],
                rows,
            ),
        ]
    return "\n".join(parts) + "\n"


def main() -> None:
    """Entry point: print the Markdown for one result file (default: the newest)."""
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        files = sorted(Path(__file__).resolve().parent.joinpath("results").glob("*.json"))
        if not files:
            raise SystemExit("no result files in bench/results/")
        path = files[-1]
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
