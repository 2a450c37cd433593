"""Scenario 8, reconnect storm: N sockets on one server process, SIGKILL, start again, every client
reconnecting as static/js/socket.js does, resuming as bell.js (``after``) and chat.js (``since``) do,
while another process sends.

Half the users have a bell and a DM socket, half a bell and a socket in one of the rooms of
``ROOM_MEMBERS``. The sender process
(``bench.pushers storm``) stores room messages, DMs and notifications through the app's services
the whole time; afterwards every socket is checked for lost and doubled rows. P0 (plain
``websockets``) goes through the same kill and restart with the same number of sockets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from bench.harness import (
    LABEL,
    PY,
    ROOT,
    Context,
    Json,
    Server,
    djtool,
    run_loadgen,
    say,
    server,
    synthetic_users,
    wait_quiet,
)
from bench.report import TARGETS, ratio, table

PEERS = 10  # the DM half talks to these users (their side of the pair is the sender process)
# Members per room: a room socket's ready lists who is online, so one room of thousands would
# measure that list (built per socket: quadratic in a storm) more than the accept path.
ROOM_MEMBERS = 50


def room_slug(i: int) -> str:
    """The room of user number ``i`` (an odd one)."""
    return f"storm-{i // 2 // ROOM_MEMBERS}"


def sockets_for(users: list[Json], peers: list[Json], after: Json | None) -> list[Json]:
    """A bell and a chat socket per user: even users a DM with a peer, odd users their room."""
    out = []
    for i, user in enumerate(users):
        chat = f"/ws/dm/{peers[i % len(peers)]['username']}/" if i % 2 == 0 else f"/ws/rooms/{room_slug(i)}/"
        out += [
            {"user": user, "path": "/ws/notifications/", "kind": "notification", "after": (after or {}).get("note", 0)},
            # chat.js resumes with since=<highest version of this conversation it has seen>; the
            # storm's conversations are new, so a page would start from 0.
            {"user": user, "path": chat, "kind": "message", "after": 0},
        ]
    return out


@contextmanager
def standby(ctx: Context, kind: str, layer: str, wanted: bool) -> Iterator[Server | None]:
    """A second server of the same kind for ``--storm-failover``, else None."""
    if not wanted:
        yield None
        return
    with server(ctx, kind, layer, "storm-standby") as spare:
        yield spare


def run(ctx: Context) -> Json:
    """The storm on the app (with its sender) and on P0."""
    if not ctx.redis_url:
        return {"skipped": "needs Redis: the sender is another process"}
    n = int(ctx.params["storm_sockets"])
    n_users = n // 2
    res: Json = {}
    # Budgets that still measure a slow accept path (20 connects/s), not cut it off.
    common = {
        "connect_budget_s": max(ctx.params["connect_budget_s"], n / 20),
        "settle_max_s": ctx.params["settle_max_s"],
        "kill_after_s": 3.0,
        "resume_deadline_s": max(60.0, n / 20),
        "concurrency": 32,
        "kills_server": True,
    }
    failover = ctx.args.storm_failover
    if "p0" in ctx.args.servers:
        wait_quiet(ctx)
        say("  -> P0 websockets" + (" (fail over to a second process)" if failover else ""))
        users = synthetic_users(n_users + PEERS)
        with server(ctx, "p0", "memory", "storm") as srv, standby(ctx, "p0", "memory", failover) as spare:
            params = {
                **common,
                "sockets": sockets_for(users[:n_users], users[n_users:], None),
                "server": {"cmd": srv.cmd, "env": srv.env, "cwd": str(ROOT), "log": str(srv.log_path)},
                "standby": {"port": spare.port} if spare else None,
            }
            ctx.runs += 1
            res["p0"] = run_loadgen(ctx, srv, "p0", "storm", params, f"st{ctx.runs}", 120.0 + n / 5)
    if "app" in ctx.args.servers and not ctx.app_problem and len(ctx.app_users) >= n_users + PEERS + 1:
        users, peers = ctx.app_users[:n_users], ctx.app_users[n_users : n_users + PEERS]
        room_sender = ctx.app_users[n_users + PEERS]
        pairs = [[u["id"], peers[i % PEERS]["id"]] for i, u in enumerate(users) if i % 2 == 0]
        rooms: dict[str, list[int]] = {}
        for i, u in enumerate(users):
            if i % 2 == 1:
                rooms.setdefault(room_slug(i), [room_sender["id"]]).append(u["id"])
        setup = djtool(ctx, "storm", {"pairs": pairs, "rooms": rooms})
        after = {"note": setup["newest_notification"]}
        # The app's own flood limits, not the bench's raised ones: the storm must not trip them.
        saved = dict(ctx.app_env)
        for key in [k for k in ctx.app_env if k.startswith("WS_")]:
            del ctx.app_env[key]
        wait_quiet(ctx)
        say("  -> app (its default flood limits)" + (" (fail over to a second process)" if failover else ""))
        try:
            with (
                server(ctx, "app", ctx.args.layer, "storm") as srv,
                standby(ctx, "app", ctx.args.layer, failover) as spare,
            ):
                params = {
                    **common,
                    "sockets": sockets_for(users, peers, after),
                    "server": {"cmd": srv.cmd, "env": srv.env, "cwd": str(ROOT), "log": str(srv.log_path)},
                    "standby": {"port": spare.port} if spare else None,
                    "sender_cmd": [PY, "-m", "bench.pushers", "storm"],
                    "sender_env": srv.env,
                    "sender_config": {
                        "rate": ctx.params["storm_rate"],
                        "mix": {"room": 1, "dm": 6, "notification": 3},
                        "room_ids": sorted(setup["rooms"].values()),
                        "room_sender": room_sender["id"],
                        "dm_pairs": [[setup["direct"][str(user)], peer] for user, peer in pairs],
                        "notify_users": [u["id"] for u in users],
                    },
                }
                ctx.runs += 1
                res["app"] = run_loadgen(ctx, srv, "app", "storm", params, f"st{ctx.runs}", 120.0 + n / 5)
        finally:
            ctx.app_env.clear()
            ctx.app_env.update(saved)
    p0_back = res.get("p0", {}).get("all_back_s")
    for r in res.values():
        r["vs_p0"] = ratio(r.get("all_back_s"), p0_back)
    say(
        f"\nScenario 8: reconnect storm, {n} sockets on one process, SIGKILL and "
        f"{'fail-over to a second process' if failover else 'restart'} ({os.cpu_count()} cores;"
        f" target: all back within {TARGETS['storm_s']:.0f} s and {TARGETS['storm_vs_p0']:.0f}x P0, 0 lost/doubled)"
    )
    table(
        [
            "server",
            "sockets",
            "connect cpu ms/socket",
            "accepting s",
            "back",
            "all back s",
            "p50 ms",
            "p99 ms",
            "sent",
            "lost",
            "doubled",
            "4429",
            "max tries",
            "x P0",
        ],
        [
            [
                LABEL[k],
                r.get("sockets"),
                r.get("connect_cpu_ms_per_socket"),
                r.get("accepting_s"),
                r.get("resumed"),
                r.get("all_back_s"),
                (r.get("resume") or {}).get("p50_ms"),
                (r.get("resume") or {}).get("p99_ms"),
                r.get("sent"),
                r.get("lost"),
                r.get("doubled"),
                r.get("refused_flooding"),
                r.get("attempts_max"),
                r.get("vs_p0"),
            ]
            if "error" not in r or "resumed" in r
            else [LABEL[k], r.get("error")]
            for k, r in res.items()
        ],
    )
    return {"sockets": n, "mode": "failover" if failover else "restart", "servers": res}
