"""Scenario 6, a busy room: many members talking at once, each within the flood limits.

200 members; at each step as many of them send, taking turns, as keep each at 10
messages a second (the per-socket limit): 16,000 deliveries/s are 8 senders, 40,000
are 20, 100,000 are 50, 200,000 are 100. P0 and P1 run the same steps in the same
run; the target is the app within the p99 limit at >= 0.8x P0's.
"""

from __future__ import annotations

from bench.harness import Context, Json, Server, run_kinds
from bench.report import TARGETS
from bench.scenarios.fanout import fanout_params, fanout_summary, print_fanout

SENDER_RATE = 10


def run(ctx: Context) -> Json:
    """Room fan-out with a sender per 10 messages/s, offered deliveries/s stepped."""
    base = {
        **fanout_params(ctx),
        "senders": 1,
        "sender_rate": SENDER_RATE,
        "steps": ctx.params["busy_room_steps"],
        "p99_limit_ms": TARGETS["busy_room_p99_ms"],
    }

    def params_for(kind: str, srv: Server) -> Json:
        return {**base, "path": f"/ws/rooms/{ctx.room or 'bench-room'}/"}

    res = run_kinds(ctx, "fanout", params_for, ctx.args.layer, timeout=60 + len(base["steps"]) * (base["step_s"] + 8))
    print_fanout(f"Scenario 6: busy room, 200 members, a sender per {SENDER_RATE} messages/s", res)
    return {"params": base, "layer": ctx.args.layer, "servers": res, "summary": fanout_summary(res, res)}
