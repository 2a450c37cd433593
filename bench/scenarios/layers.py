"""Scenario 5, channel layers: scenario 1's room fan-out on the app with each layer."""

from __future__ import annotations

from bench.harness import Context, Json, Server, run_kinds, say
from bench.scenarios.fanout import fanout_params, fanout_summary, print_fanout


def run(ctx: Context) -> Json:
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
