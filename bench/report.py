"""Render a result file as Markdown: ``python -m bench.report bench/results/<run>.json``.

Used to paste a recorded run into docs/benchmarks.md, so the document shows exactly what the
JSON holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.run import LABEL, shown, sustained

Json = dict[str, Any]


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
