"""Client side of every scenario, run as its own process: ``python -m bench.loadgen < config.json``.

One asyncio process holds all the sockets (the server keeps the other core). Senders are open
loop: each message carries its *intended* send time (``time.time_ns()``) in its body, and
latency is receipt time minus intended time, so a server that falls behind is charged for the
queueing it causes instead of slowing the sender down (no coordinated omission).

The config (JSON on stdin) names the scenario, the target (kind ``app`` / ``p0`` / ``p1``, port,
origin), the users (id, username, session key), the pids to sample and the scenario's params.
Progress goes to stderr; the result is one JSON object on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.common import CpuWindow, latency_summary, proc_cpu_seconds, proc_rss_bytes, redis_used_memory
from bench.fastws import HandshakeError, OnMessage, WSConn, connect
from bench.rlimit_exec import raise_nofile

Json = dict[str, Any]


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(f"    [loadgen] {msg}", file=sys.stderr, flush=True)


def token_fields(payload: bytes) -> list[bytes] | None:
    """Fields of the ``bm:...`` token embedded in a frame (body or notification text), if any."""
    i = payload.find(b"bm:")
    if i < 0:
        return None
    j = payload.find(b'"', i)
    return payload[i + 3 : j].split(b":")


class Target:
    """How to reach one server: the app (session cookie) or a peer (identity in the query string)."""

    def __init__(self, cfg: Json) -> None:
        """Read ``kind``, ``port``, ``origin`` and ``cookie_name`` from the config."""
        self.kind: str = cfg["kind"]
        self.port: int = int(cfg["port"])
        self.origin: str = cfg.get("origin") or f"http://127.0.0.1:{self.port}"
        self.cookie_name: str = cfg.get("cookie_name", "sessionid")

    def request(self, user: Json, path: str) -> tuple[str, dict[str, str]]:
        """Path with query and headers for ``user`` opening ``path``."""
        headers = {"Origin": self.origin}
        if self.kind == "app":
            headers["Cookie"] = f"{self.cookie_name}={user['session']}"
            return path, headers
        sep = "&" if "?" in path else "?"
        return f"{path}{sep}as={user['username']}&uid={user['id']}", headers


async def open_many(
    target: Target,
    users: list[Json],
    path_for: Callable[[int, Json], str],
    on_message: OnMessage | None,
    concurrency: int = 32,
    timeout: float = 30.0,
    budget_s: float | None = None,
    attempts: int = 3,
) -> tuple[list[WSConn | None], Json]:
    """Open one socket per user (bounded concurrency) and wait for each ``ready`` frame.

    Connecting stops after ``budget_s`` (the rest count as failed), so a slow server cannot
    stretch the run without bound.
    """
    sem = asyncio.Semaphore(concurrency)
    conns: list[WSConn | None] = [None] * len(users)
    errors: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    setup_ns: list[int] = []

    async def one(i: int, user: Json) -> None:
        path, headers = target.request(user, path_for(i, user))
        async with sem:
            t0 = time.perf_counter_ns()
            for attempt in range(1, attempts + 1):
                try:
                    conns[i] = await connect(target.port, path, headers, on_message, tag=i, timeout=timeout)
                    setup_ns.append(time.perf_counter_ns() - t0)
                    return
                except HandshakeError as exc:
                    if exc.status is not None:
                        errors[f"status={exc.status} close={exc.close_code}"] += 1
                        return  # refused on purpose: retrying would not help
                    # daphne drops a socket whose app has not accepted within --websocket_connect_timeout.
                    reason = "closed before the upgrade"
                except (OSError, TimeoutError) as exc:
                    reason = type(exc).__name__
                if attempt == attempts:
                    errors[reason] += 1
                else:
                    retried[reason] += 1  # a browser reconnects too; the retry is counted, not hidden

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one(i, u)) for i, u in enumerate(users)]
    _, pending = await asyncio.wait(tasks, timeout=budget_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        errors["connect budget exhausted"] += len(pending)
    seconds = time.monotonic() - t0
    ok = sum(c is not None for c in conns)
    stats: Json = {
        "wanted": len(users),
        "ok": ok,
        "failed": len(users) - ok,
        "errors": dict(errors),
        "retried": dict(retried),
        "seconds": round(seconds, 2),
        "per_s": round(ok / seconds, 1) if seconds > 0 else None,
        "handshake": latency_summary(setup_ns),
    }
    return conns, stats


def closed_stats(conns: list[WSConn | None]) -> Json:
    """How many opened sockets the server has closed so far, by close code."""
    codes: Counter[str] = Counter(str(c.close_code) for c in conns if c is not None and c.closed.done())
    return {"sockets_closed": sum(codes.values()), "close_codes": dict(codes)}


async def close_all(conns: list[WSConn | None], grace: float = 3.0) -> None:
    """Close every socket and give the server a moment to see it."""
    live = [c for c in conns if c is not None]
    for c in live:
        c.close()
    if live:
        await asyncio.wait([asyncio.ensure_future(c.closed) for c in live], timeout=grace)


async def paced(n: int, rate: float, send: Callable[[int, int], None], lead_s: float = 0.05) -> tuple[int, int]:
    """Call ``send(i, intended_ns)`` n times at ``rate``/s from a fixed schedule (open loop).

    Returns (first intended ns, time the last call was made). A late sender catches up without
    shifting the schedule, so the lateness shows up as latency.
    """
    interval = 1e9 / rate
    t0 = time.time_ns() + int(lead_s * 1e9)
    for i in range(n):
        intended = t0 + int(i * interval)
        delay = intended - time.time_ns()
        await asyncio.sleep(delay / 1e9 if delay > 0 else 0)
        send(i, intended)
    return t0, time.time_ns()


async def drain(received: Callable[[], int], expected: int, idle_s: float, max_s: float) -> None:
    """Wait until ``received() >= expected``, or nothing arrived for ``idle_s``, or ``max_s`` passed."""
    deadline = time.monotonic() + max_s
    last, last_change = received(), time.monotonic()
    while time.monotonic() < deadline:
        now_count = received()
        if now_count >= expected:
            return
        if now_count != last:
            last, last_change = now_count, time.monotonic()
        elif time.monotonic() - last_change > idle_s:
            return
        await asyncio.sleep(0.02)


async def settle(pid: int | None, max_s: float, below_pct: float = 15.0, window_s: float = 0.5) -> float:
    """Wait until the server's CPU use over ``window_s`` drops below ``below_pct`` (or ``max_s``).

    Connecting hundreds of room members queues join frames and presence work; measuring before
    that backlog is gone would charge it to the first step. Returns the seconds waited.
    """
    t0 = time.monotonic()
    if not pid:
        return 0.0
    while time.monotonic() - t0 < max_s:
        before = proc_cpu_seconds(pid)
        await asyncio.sleep(window_s)
        after = proc_cpu_seconds(pid)
        if before is None or after is None or 100.0 * (after - before) / window_s < below_pct:
            break
    return round(time.monotonic() - t0, 2)


def _users_or_die(cfg: Json, n: int) -> list[Json]:
    users: list[Json] = cfg["users"]
    if len(users) < n:
        raise SystemExit(f"need {n} users, config has {len(users)}")
    return users[:n]


# -- scenario 1 / 5: room fan-out ---------------------------------------------------------------
async def fanout(cfg: Json, target: Target, window: CpuWindow) -> Json:
    """``senders`` (default 1) members of a room of ``members`` send in turn; offered deliveries/s
    stepped; open-loop latency."""
    p = cfg["params"]
    members = int(p["members"])
    senders = int(p.get("senders", 1))
    users = _users_or_die(cfg, members)
    tag = cfg["tag"].encode()
    state: Json = {"step": -1, "count": 0, "lat": [], "last": 0, "per_conn": [0] * members}

    def on_message(conn: WSConn, payload: bytes, now: int) -> None:
        f = token_fields(payload)
        if f is None or f[0] != tag or int(f[1]) != state["step"]:
            return
        state["count"] += 1
        state["per_conn"][conn.tag] += 1
        state["last"] = now
        state["lat"].append(now - int(f[3]))

    conns, conn_stats = await open_many(
        target,
        users,
        lambda i, u: p["path"],
        on_message,
        concurrency=int(p.get("concurrency", 16)),
        budget_s=p.get("connect_budget_s"),
    )
    log(f"fanout: {conn_stats['ok']}/{members} connected in {conn_stats['seconds']} s {conn_stats['errors'] or ''}")
    steps: list[Json] = []
    # Who may send in some step (with ``sender_rate``, as many as the top step needs).
    sending = conns if p.get("sender_rate") else conns[:senders]
    if any(conn is None for conn in sending) or conn_stats["ok"] < members:
        await close_all(conns)
        return {"connect": conn_stats, "steps": steps, "error": "not all members connected"}
    conn_stats["settle_s"] = await settle(cfg["pids"].get("server"), float(p.get("settle_max_s", 20.0)))

    async def run_step(offered: int, step_no: int) -> Json:
        """One step; ``step_no`` is unique per attempt so late frames of a retried step are ignored.

        With ``sender_rate``, as many members send as keep each at or under that many messages a
        second (a busy room: many people talking, each within the flood limits)."""
        rate = offered / members
        n = max(1, round(rate * float(p["step_s"])))
        count = senders
        if p.get("sender_rate"):
            count = min(members, max(senders, math.ceil(rate / float(p["sender_rate"]))))
        sending = conns[:count]
        state.update(step=step_no, count=0, lat=[], last=0, per_conn=[0] * members)
        closed_before = closed_stats(conns)["sockets_closed"]

        def send(i: int, intended: int, step_no: int = step_no) -> None:
            sending[i % count].send_text(
                json.dumps(
                    {
                        "type": "message",
                        "body": f"bm:{cfg['tag']}:{step_no}:{i}:{intended}",
                        "client_id": f"c{cfg['tag']}{step_no}-{i}",
                    }
                )
            )

        window.start()
        t_first, t_sent = await paced(n, rate, send)
        cpu = window.stop()
        expected = n * members
        await drain(
            lambda: state["count"], expected, float(p.get("drain_idle_s", 1.0)), float(p.get("drain_max_s", 5.0))
        )
        lat_ns: list[int] = state["lat"]
        got = state["count"]
        # Throughput over the offered window, or longer when the server lagged behind it.
        span_s = max((state["last"] - t_first) / 1e9, n / rate)
        lat = latency_summary(lat_ns)
        ratio = got / expected
        closed = closed_stats(conns)
        # Throughput is judged on the sockets still open: one socket the server dropped (it is
        # reported, and fails "ok") should not hide whether the rest kept up.
        open_idx = [i for i, c in enumerate(conns) if c is not None and not c.closed.done()]
        open_ratio = sum(state["per_conn"][i] for i in open_idx) / max(n * len(open_idx), 1)
        open_offered = offered * len(open_idx) / members
        # Keeping up: (nearly) everything delivered with a bounded queue (p99 <= 1 s) means the
        # offered rate was sustained; a 2-3 s window is too short to read it from receipt times.
        keeps_up = (
            open_ratio >= float(p["min_delivered"])
            and lat["p99_ms"] is not None
            and lat["p99_ms"] <= float(p.get("keepup_p99_ms", 1000.0))
        )
        ok = (
            keeps_up
            and closed["sockets_closed"] == closed_before
            and lat["p99_ms"] is not None
            and lat["p99_ms"] <= float(p["p99_limit_ms"])
        )
        row = {
            "offered_deliveries_per_s": offered,
            "senders": count,
            "messages_per_s": round(rate, 2),
            "messages": n,
            "expected": expected,
            "delivered": got,
            "delivered_ratio": round(ratio, 5),
            "delivered_ratio_open_sockets": round(open_ratio, 5),
            "deliveries_per_s": round(got / span_s, 1),
            "sustained_deliveries_per_s": round(open_offered, 1) if keeps_up else None,
            "send_lag_ms": round((t_sent - (t_first + (n - 1) * 1e9 / rate)) / 1e6, 1),
            **lat,
            **cpu,
            **closed,
            "closed_during_step": closed["sockets_closed"] - closed_before,
            "keeps_up": keeps_up,
            "ok": ok,
        }
        log(
            f"fanout step {offered}/s: delivered {ratio:.4f} p50 {lat['p50_ms']} p99 {lat['p99_ms']} ms "
            f"srv {cpu.get('server_cpu_pct')}% cli {cpu['client_cpu_pct']}% other {cpu.get('other_cpu_pct')}% "
            f"{'ok' if ok else 'keeps up, p99 over limit' if keeps_up else 'FAIL'}"
        )
        await drain(lambda: -1, 0, 0.3, 2.0)  # quiet gap between steps
        return row

    failed = False
    attempt_no = 0
    for offered in p["steps"]:
        if failed and p.get("stop_on_fail", True):
            steps.append({"offered_deliveries_per_s": offered, "skipped": True})
            continue
        row = await run_step(offered, attempt_no)
        attempt_no += 1
        if not row["keeps_up"] and not any(conn.closed.done() for conn in sending):
            # One more try before giving up on the step: on a shared 2-core machine a burst of
            # someone else's work can sink a 3 s step; a real ceiling fails twice.
            await settle(cfg["pids"].get("server"), float(p.get("settle_max_s", 20.0)))
            first = row
            row = await run_step(offered, attempt_no)
            attempt_no += 1
            row["first_attempt"] = {k: first[k] for k in ("delivered_ratio", "p50_ms", "p99_ms", "other_cpu_pct")}
        steps.append(row)
        failed = failed or not row["keeps_up"]
        closed_senders = [conn for conn in sending if conn.closed.done()]
        if closed_senders:
            steps[-1]["error"] = f"the server closed a sender's socket (code {closed_senders[0].close_code})"
            log(steps[-1]["error"])
            break
    await close_all(conns)
    return {"connect": conn_stats, "steps": steps}


# -- scenario 2: notification fan-out -------------------------------------------------------------
async def notify(cfg: Json, target: Target, window: CpuWindow) -> Json:
    """One notification socket per user; a separate pusher process notifies every user, ``reps`` times."""
    p = cfg["params"]
    n = int(p["users"])
    users = _users_or_die(cfg, n)
    tag = cfg["tag"].encode()
    reps = int(p["reps"])
    recv: list[list[tuple[int, int]]] = [[] for _ in range(reps)]  # (receipt ns, latency ns)

    def on_message(conn: WSConn, payload: bytes, now: int) -> None:
        f = token_fields(payload)
        if f is None or f[0] != tag:
            return
        recv[int(f[1])].append((now, now - int(f[3])))

    conns, conn_stats = await open_many(
        target,
        users,
        lambda i, u: "/ws/notifications/",
        on_message,
        concurrency=int(p.get("concurrency", 16)),
        budget_s=p.get("connect_budget_s"),
    )
    log(f"notify: {conn_stats['ok']}/{n} connected in {conn_stats['seconds']} s {conn_stats['errors'] or ''}")
    if conn_stats["ok"] < n / 2:
        await close_all(conns)
        return {"connect": conn_stats, "error": f"only {conn_stats['ok']}/{n} users connected"}
    # Notify only the users whose socket is open, so "delivered" compares like with like.
    users = [u for u, c in zip(users, conns, strict=True) if c is not None]
    n = len(users)
    conn_stats["settle_s"] = await settle(cfg["pids"].get("server"), float(p.get("settle_max_s", 20.0)))
    pusher_cfg = {
        **p["pusher_config"],
        "tag": cfg["tag"],
        "reps": reps,
        "users": [{"id": u["id"], "username": u["username"]} for u in users],
    }
    env = {**os.environ, **p.get("pusher_env", {})}
    proc = await asyncio.create_subprocess_exec(
        *p["pusher_cmd"], stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(pusher_cfg).encode())
    proc.stdin.close()
    pusher_out: Json = {}
    cpu: Json = {}
    started = False
    try:
        async with asyncio.timeout(float(p.get("pusher_timeout_s", 120))):
            while line := await proc.stdout.readline():
                msg = json.loads(line)
                if msg.get("event") == "start":
                    window.start()
                    started = True
                elif msg.get("event") == "done":
                    pusher_out = msg
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pusher_out = {"error": "pusher timed out"}
    await drain(lambda: sum(len(r) for r in recv), n * reps, 2.0, 10.0)
    if started:
        cpu = window.stop()
    closed = closed_stats(conns)
    await close_all(conns)
    bursts = []
    for rep, burst in enumerate(pusher_out.get("bursts", [])):
        got = recv[rep]
        t_start = int(burst["t_start_ns"])
        last = max((t for t, _ in got), default=None)
        bursts.append(
            {
                "rep": rep,
                "delivered": len(got),
                "expected": n,
                "pusher_ms": round((int(burst["t_end_ns"]) - t_start) / 1e6, 1),
                "last_recipient_ms": round((last - t_start) / 1e6, 1) if last else None,
                **latency_summary([lat for _, lat in got]),
            }
        )
        log(
            f"notify burst {rep}: {len(got)}/{n} last recipient {bursts[-1]['last_recipient_ms']} ms "
            f"p99 {bursts[-1]['p99_ms']} ms"
        )
    all_lat = [lat for r in recv for _, lat in r]
    lasts = sorted(b["last_recipient_ms"] for b in bursts if b["last_recipient_ms"] is not None)
    return {
        "connect": conn_stats,
        "recipients": n,
        "bursts": bursts,
        "pusher": {k: v for k, v in pusher_out.items() if k != "bursts"},
        "delivered_ratio": round(sum(len(r) for r in recv) / (n * reps), 5),
        "last_recipient_ms_median": lasts[len(lasts) // 2] if lasts else None,
        "last_recipient_ms_max": lasts[-1] if lasts else None,
        "latency": latency_summary(all_lat),
        **cpu,
        **closed,
    }


# -- scenario 3: direct messages ------------------------------------------------------------------
async def dm(cfg: Json, target: Target, window: CpuWindow) -> Json:
    """``pairs`` DM pairs, both sockets open; messages round-robin over pairs, alternating side."""
    p = cfg["params"]
    pairs = int(p["pairs"])
    users = _users_or_die(cfg, 2 * pairs)
    tag = cfg["tag"].encode()
    state: Json = {"step": -1, "acks": [], "recips": []}

    def on_message(conn: WSConn, payload: bytes, now: int) -> None:
        f = token_fields(payload)
        if f is None or f[0] != tag or int(f[1]) != state["step"]:
            return
        (state["acks"] if int(f[3]) == conn.tag else state["recips"]).append(now - int(f[4]))

    def path_for(i: int, user: Json) -> str:
        return f"/ws/dm/{users[i ^ 1]['username']}/"

    conns, conn_stats = await open_many(
        target,
        users,
        path_for,
        on_message,
        concurrency=int(p.get("concurrency", 16)),
        budget_s=p.get("connect_budget_s"),
    )
    log(f"dm: {conn_stats['ok']}/{2 * pairs} connected in {conn_stats['seconds']} s {conn_stats['errors'] or ''}")
    steps: list[Json] = []
    if conn_stats["ok"] < 2 * pairs:
        await close_all(conns)
        return {"connect": conn_stats, "steps": steps, "error": "not all DM sockets connected"}
    conn_stats["settle_s"] = await settle(cfg["pids"].get("server"), float(p.get("settle_max_s", 20.0)))
    failed = False
    for step_no, rate in enumerate(p["steps"]):
        if failed and p.get("stop_on_fail", True):
            steps.append({"offered_msgs_per_s": rate, "skipped": True})
            continue
        n = max(1, round(rate * float(p["step_s"])))
        state.update(step=step_no, acks=[], recips=[])

        def send(i: int, intended: int, step_no: int = step_no) -> None:
            sender = 2 * (i % pairs) + (i // pairs) % 2
            conn = conns[sender]
            assert conn is not None
            conn.send_text(
                json.dumps(
                    {
                        "type": "message",
                        "body": f"bm:{cfg['tag']}:{step_no}:{i}:{sender}:{intended}",
                        "client_id": f"c{cfg['tag']}{step_no}-{i}",
                    }
                )
            )

        window.start()
        t_first, t_sent = await paced(n, rate, send)
        cpu = window.stop()
        await drain(
            lambda: len(state["acks"]) + len(state["recips"]),
            2 * n,
            float(p.get("drain_idle_s", 1.0)),
            float(p.get("drain_max_s", 5.0)),
        )
        ack = latency_summary(state["acks"])
        rcp = latency_summary(state["recips"])
        ok = (
            len(state["acks"]) >= n
            and len(state["recips"]) >= n
            and rcp["p99_ms"] is not None
            and ack["p99_ms"] is not None
            and max(rcp["p99_ms"], ack["p99_ms"]) <= float(p["p99_limit_ms"])
        )
        row = {
            "offered_msgs_per_s": rate,
            "messages": n,
            "send_window_s": round((t_sent - t_first) / 1e9, 3),
            "acked": len(state["acks"]),
            "received": len(state["recips"]),
            "ack": ack,
            "recipient": rcp,
            "body_prefix": f"bm:{cfg['tag']}:{step_no}:",
            **cpu,
            **closed_stats(conns),
            "ok_latency": ok,
        }
        steps.append(row)
        log(
            f"dm step {rate}/s: acked {len(state['acks'])}/{n} recv {len(state['recips'])}/{n} "
            f"ack p99 {ack['p99_ms']} recip p50 {rcp['p50_ms']} p99 {rcp['p99_ms']} ms "
            f"srv {cpu.get('server_cpu_pct')}% cli {cpu['client_cpu_pct']}%"
        )
        # A server that acknowledged under half the messages has collapsed: higher rates only
        # pile onto its backlog.
        failed = failed or len(state["acks"]) < 0.5 * n
        await drain(lambda: -1, 0, 0.3, 1.0)
    await close_all(conns)
    return {"connect": conn_stats, "steps": steps}


# -- scenario 4: idle connections -----------------------------------------------------------------
async def idle(cfg: Json, target: Target, window: CpuWindow) -> Json:
    """Open ``warm`` sockets, take a baseline, open the rest, measure RSS per socket and idle CPU."""
    p = cfg["params"]
    n, warm = int(p["connections"]), int(p["warm"])
    users = _users_or_die(cfg, n)
    server_pid = int(cfg["pids"]["server"])
    redis_url = p.get("redis_url")

    first, warm_stats = await open_many(target, users[:warm], lambda i, u: "/ws/notifications/", None)
    await settle(server_pid, 10.0)
    rss0 = proc_rss_bytes(server_pid) or 0
    redis0 = redis_used_memory(redis_url) if redis_url else None
    rest, conn_stats = await open_many(
        target,
        users[warm:],
        lambda i, u: "/ws/notifications/",
        None,
        concurrency=int(p.get("concurrency", 32)),
        budget_s=p.get("connect_budget_s"),
    )
    log(
        f"idle: {conn_stats['ok'] + warm_stats['ok']}/{n} connected ({conn_stats['per_s']}/s) "
        f"{conn_stats['errors'] or ''}"
    )
    conn_stats["settle_s"] = await settle(server_pid, float(p.get("settle_max_s", 20.0)))
    rss1 = proc_rss_bytes(server_pid) or 0
    redis1 = redis_used_memory(redis_url) if redis_url else None
    window.start()
    await asyncio.sleep(float(p["idle_s"]))
    cpu = window.stop()
    conns = first + rest
    still_open = sum(1 for c in conns if c is not None and not c.closed.done())
    added = conn_stats["ok"]
    await close_all(conns, grace=5.0)
    result = {
        "connect": conn_stats,
        "warm": warm_stats["ok"],
        "connections": warm_stats["ok"] + conn_stats["ok"],
        "still_open_after_idle": still_open,
        "server_rss_baseline_mib": round(rss0 / 2**20, 1),
        "server_rss_mib": round(rss1 / 2**20, 1),
        "server_kib_per_conn": round((rss1 - rss0) / max(added, 1) / 1024, 2),
        "redis_bytes_per_conn": round((redis1 - redis0) / max(added, 1))
        if redis0 is not None and redis1 is not None
        else None,
        "idle_s": p["idle_s"],
        **cpu,
    }
    log(f"idle: {result['server_kib_per_conn']} KiB/conn, server CPU {cpu.get('server_cpu_pct')}% while idle")
    return result


# -- scenario 7: cost per request on a year of data ---------------------------------------------
class HttpClient:
    """Keep-alive HTTP/1.1 GETs as one logged-in user (blocking: requests go one at a time)."""

    def __init__(self, target: Target, session: str) -> None:
        """One connection to the server, the session cookie on every request."""
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
        self.headers = {"Cookie": f"{target.cookie_name}={session}", "Host": f"127.0.0.1:{target.port}"}

    def get(self, path: str) -> tuple[int, Json]:
        """(status, decoded JSON body)."""
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else {}


async def costs(cfg: Json, target: Target, window: CpuWindow) -> Json:
    """Each operation ``reps`` times, one at a time, as the heavy user; p50/p99 per operation.

    Operations: history pages deep in the past (DM, room), sockets resuming 100 messages back
    (DM, room), the bell's ``ready``, ``/api/conversations/``, deep ``/api/notifications/`` pages,
    mark-all-read of the unread notifications (restored between runs, untimed), a DM send
    (time to the echo, which the socket gets once the message is stored and published).
    """
    import psycopg

    p = cfg["params"]
    reps, warm = int(p["reps"]), int(p.get("warm", 3))
    user, peer = p["user"], p["peer"]
    http = HttpClient(target, user["session"])
    timings: dict[str, list[int]] = {}
    checks: dict[str, Any] = {}
    path, headers = target.request(user, "/")

    def timed(name: str, rep: int, started: int) -> None:
        if rep >= warm:
            timings.setdefault(name, []).append(time.perf_counter_ns() - started)

    def cycle(values: list[int], rep: int) -> int:
        return values[rep % len(values)]

    async def ready(path: str) -> WSConn:
        return await connect(target.port, path, headers, timeout=30)

    for rep in range(warm + reps):
        t0 = time.perf_counter_ns()
        status, body = http.get(f"/api/messages/{peer['username']}/?before={cycle(p['dm_deep_before'], rep)}&limit=50")
        timed("dm history page (before=)", rep, t0)
        checks["dm history page (before=)"] = f"HTTP {status}, {len(body.get('results', []))} messages"
        t0 = time.perf_counter_ns()
        status, body = http.get(
            f"/api/rooms/{p['room_slug']}/messages/?before={cycle(p['room_deep_before'], rep)}&limit=50"
        )
        timed("room history page (before=)", rep, t0)
        checks["room history page (before=)"] = f"HTTP {status}, {len(body.get('results', []))} messages"
        for name, ws_path in (
            ("dm socket ready, replay of 100", f"/ws/dm/{peer['username']}/?after={p['dm_after_100']}"),
            # The year's messages are unchanged, so version = id: since= replays the same 100.
            ("dm socket ready, since= replay of 100", f"/ws/dm/{peer['username']}/?since={p['dm_after_100']}"),
            ("room socket ready, replay of 100", f"/ws/rooms/{p['room_slug']}/?after={p['room_after_100']}"),
            ("bell socket ready (unread, inbox)", "/ws/notifications/"),
        ):
            t0 = time.perf_counter_ns()
            conn = await ready(ws_path)
            timed(name, rep, t0)
            frame = await conn.ready
            replayed = sum(1 for f in conn.pre_ready if f.get("type") in ("message", "message_update", "notification"))
            checks[name] = f"{replayed} replayed" + (
                f", unread {frame.get('unread')}, inbox {frame.get('inbox_unread')}" if "unread" in frame else ""
            )
            conn.close()
            await conn.closed
        t0 = time.perf_counter_ns()
        status, body = http.get("/api/conversations/")
        timed("/api/conversations/ (500 conversations)", rep, t0)
        checks["/api/conversations/ (500 conversations)"] = f"HTTP {status}, {len(body.get('results', []))} entries"
        t0 = time.perf_counter_ns()
        status, body = http.get(f"/api/notifications/?before={cycle(p['notifications_deep_before'], rep)}&limit=20")
        timed("/api/notifications/ deep page", rep, t0)
        checks["/api/notifications/ deep page"] = f"HTTP {status}, {len(body.get('results', []))} notifications"
    # Mark-all-read: the unread rows and the user's read mark are put back between runs,
    # outside the timing (no job worker runs here, so the rows under the mark keep no
    # read_at), and the table vacuumed as autovacuum would keep it (this machine's
    # PostgreSQL runs without autovacuum, and the dead rows of each run slowed every
    # later read of the table: 2.7 million of them after a few runs).
    restore = (
        "UPDATE notifications_notification SET read_at = NULL WHERE id IN (SELECT id FROM notifications_notification"
        " WHERE recipient_id = %(user)s ORDER BY id DESC LIMIT %(unread)s)",
        "DELETE FROM notifications_readmark WHERE user_id = %(user)s",
        "VACUUM notifications_notification",
    )
    got: Json = {}

    def on_bell(conn: WSConn, payload: bytes, now: int) -> None:
        frame = json.loads(payload)
        # "up_to" only when it marked something: a no-op answer would time nothing.
        if frame.get("type") == "unread" and frame.get("unread") == 0 and "up_to" in frame and not got["done"].done():
            got["done"].set_result(None)

    bell = await connect(target.port, "/ws/notifications/", headers, on_message=on_bell, timeout=30)
    with psycopg.connect(p["database_url"], autocommit=True) as db:
        for rep in range(warm + int(p.get("mark_reps", reps))):
            for statement in restore:
                db.execute(statement, {"user": user["id"], "unread": p["unread"]})
            got["done"] = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter_ns()
            bell.send_json({"type": "mark_all_read"})
            await asyncio.wait_for(got["done"], 30)
            timed(f"mark all read ({p['unread']})", rep, t0)
        for statement in restore:
            db.execute(statement, {"user": user["id"], "unread": p["unread"]})
    bell.close()
    # A DM send: the sender's echo comes once the message is stored and published.
    echoes: Json = {}

    def on_dm(conn: WSConn, payload: bytes, now: int) -> None:
        fields = token_fields(payload)
        if fields is not None and fields[0] == cfg["tag"].encode() and fields[1] in echoes:
            echoes.pop(fields[1]).set_result(None)

    dm_conn = await connect(target.port, f"/ws/dm/{peer['username']}/", headers, on_message=on_dm, timeout=30)
    for rep in range(warm + reps):
        key = str(rep).encode()
        echoes[key] = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter_ns()
        dm_conn.send_json({"type": "message", "body": f"bm:{cfg['tag']}:{rep}:", "client_id": f"c{cfg['tag']}-{rep}"})
        await asyncio.wait_for(echoes[key], 30)
        timed("dm send (store + publish)", rep, t0)
        await asyncio.sleep(0.02)
    dm_conn.close()
    http.conn.close()
    return {
        "reps": reps,
        "operations": {
            name: {**latency_summary(values), "check": checks.get(name)} for name, values in timings.items()
        },
    }


# -- scenario 8: reconnect storm ------------------------------------------------------------------
# static/js/socket.js: after a network fault or a 1006/1011/1012 close, attempt n waits
# uniform(0, min(30 s, 0.5 s * 2^(n-1))) + 0.25 s; 4429 waits 60-90 s; 4401/4403/4404 stop.
STOP_CODES = {4401, 4403, 4404}
FLOODING = 4429


def backoff_s(attempt: int, code: int | None) -> float:
    """socket.js's delay before reconnect number ``attempt`` (1, 2, ...) after a close with ``code``."""
    import random

    if code == FLOODING:
        return 60.0 + random.random() * 30.0
    return random.random() * min(30.0, 0.5 * 2 ** (attempt - 1)) + 0.25


class StormSocket:
    """One page's socket: reconnects as socket.js does, resuming as bell.js and chat.js do."""

    def __init__(self, user: Json, path: str, kind: str, after: int) -> None:
        """``kind`` is ``message`` (chat) or ``notification`` (bell): the frames it resumes by."""
        self.user, self.path, self.kind, self.after = user, path, kind, after
        self.seen: Counter[int] = Counter()
        self.attempt = 0
        self.conversation: int | None = None
        self.ready_at: list[float] = []
        self.closes: Counter[str] = Counter()
        self.stopped_by: int | None = None
        self.truncated = False

    def take(self, frame: Any) -> None:
        """Count a replayed or live frame this socket resumes by (a chat message by its version, as
        chat.js resumes with ``since``; a notification by its id)."""
        if isinstance(frame, dict) and frame.get("type") == self.kind:
            row = frame[self.kind]
            self.seen[int(row["id"])] += 1
            self.after = max(self.after, int(row.get("version", row["id"])))

    def on_message(self, conn: WSConn, payload: bytes, now: int) -> None:
        """Live frames."""
        if self.kind.encode() in payload:
            self.take(json.loads(payload))

    async def life(self, target: Target, first: asyncio.Semaphore, stop: asyncio.Event) -> None:
        """Connect, stay until closed, back off, reconnect; until ``stop``."""
        resume = target.kind == "app"
        while not stop.is_set():
            # bell.js resumes with ?after=<newest id>, chat.js with ?since=<highest version> (ids and
            # versions share one sequence, so the page's newest id is a version too).
            cursor = "since" if self.kind == "message" else "after"
            query = f"?{cursor}={self.after}" if resume else ""
            path, headers = target.request(self.user, self.path + query)
            code: int | None = None
            try:
                # A browser waits as long as the server keeps the handshake open (daphne drops
                # it after its connect timeout); a client that gave up sooner would only add
                # abandoned handshakes to the server's queue.
                if not self.ready_at:
                    async with first:
                        conn = await connect(target.port, path, headers, self.on_message, timeout=60)
                else:
                    conn = await connect(target.port, path, headers, self.on_message, timeout=60)
            except HandshakeError as exc:
                code = exc.close_code
                if code is None:
                    reason = "dropped before ready" if exc.status == 101 else f"HTTP {exc.status}"
            except (OSError, TimeoutError) as exc:
                code, reason = None, type(exc).__name__
            else:
                self.attempt = 0
                self.ready_at.append(time.monotonic())
                ready = await conn.ready
                self.conversation = ready.get("conversation", self.conversation)
                self.truncated = self.truncated or bool(ready.get("truncated"))
                for frame in conn.pre_ready:
                    self.take(frame)
                closed = asyncio.ensure_future(asyncio.shield(conn.closed))
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait({closed, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if stop.is_set():
                    conn.close()
                    return
                code = conn.close_code
                reason = "closed without a code"
            self.closes[str(code) if code is not None else reason] += 1
            if code in STOP_CODES:
                self.stopped_by = code
                return
            self.attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff_s(self.attempt, code))


def start_server(spec: Json) -> subprocess.Popen[bytes]:
    """Start the replacement server (same command, environment and port) in its own session."""
    with open(spec["log"], "ab") as log_file:
        return subprocess.Popen(
            spec["cmd"],
            cwd=spec["cwd"],
            env=spec["env"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the replacement server's process group, SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, 8.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


async def first_accept(port: int, since: float, refused_first: bool) -> float:
    """Seconds from ``since`` until something accepts TCP connections on the port; with
    ``refused_first``, only after a connect was refused once (the killed process may take a
    moment to die, and its listening socket with it)."""
    while refused_first:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            break
        writer.close()
        await asyncio.sleep(0.01)
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return round(time.monotonic() - since, 2)


async def storm(cfg: Json, target: Target, window: CpuWindow) -> Json:
    """Open every socket, let a sender process send, SIGKILL the server, start it again, wait until
    every socket is back and resumed, stop the sender; then check every socket for lost/doubled rows."""
    p = cfg["params"]
    sockets = [StormSocket(s["user"], s["path"], s["kind"], int(s["after"])) for s in p["sockets"]]
    stop = asyncio.Event()
    first = asyncio.Semaphore(int(p.get("concurrency", 32)))
    server_pid = int(cfg["pids"]["server"])
    cpu0 = proc_cpu_seconds(server_pid)
    lives = [asyncio.ensure_future(s.life(target, first, stop)) for s in sockets]
    t0 = time.monotonic()

    async def until(condition: Callable[[], bool], limit: float) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if condition():
                return True
            await asyncio.sleep(0.05)
        return condition()

    opened = await until(lambda: all(s.ready_at for s in sockets), float(p["connect_budget_s"]))
    connect_s = round(time.monotonic() - t0, 2)
    cpu1 = proc_cpu_seconds(server_pid)
    # The server's CPU per socket over the first connects: what bounds a storm on one process,
    # and far steadier from run to run than the storm's wall time.
    measured = opened and cpu0 is not None and cpu1 is not None
    connect_cpu_ms = round(1000 * (cpu1 - cpu0) / len(sockets), 2) if measured else None
    log(f"storm: {sum(bool(s.ready_at) for s in sockets)}/{len(sockets)} open in {connect_s} s")
    result: Json = {"sockets": len(sockets), "connect_s": connect_s, "connect_cpu_ms_per_socket": connect_cpu_ms}
    if not opened:
        stop.set()
        await asyncio.gather(*lives, return_exceptions=True)
        return {**result, "error": "not every socket connected"}
    await settle(cfg["pids"].get("server"), float(p.get("settle_max_s", 10.0)))
    sender = None
    if p.get("sender_cmd"):
        sender = await asyncio.create_subprocess_exec(
            *p["sender_cmd"],
            limit=2**26,  # its last line lists every row it stored
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **p.get("sender_env", {})},
        )
        assert sender.stdin is not None and sender.stdout is not None
        sender.stdin.write(json.dumps({**p["sender_config"], "tag": cfg["tag"]}).encode())
        sender.stdin.close()
        await sender.stdout.readline()  # {"event": "start"}
    await asyncio.sleep(float(p["kill_after_s"]))
    before = [len(s.ready_at) for s in sockets]
    os.kill(server_pid, signal.SIGKILL)
    t_kill = time.monotonic()
    standby = p.get("standby")
    # Failover: the clients' next connects reach a second process that was running all along (a
    # proxy in front would do that); restart: the same command starts again on the same port.
    replacement = None if standby else start_server(p["server"])
    if standby:
        target.port = int(standby["port"])
    accepting = asyncio.ensure_future(first_accept(target.port, t_kill, refused_first=not standby))
    try:
        back = await until(
            lambda: all(len(s.ready_at) > n or s.stopped_by for s, n in zip(sockets, before, strict=True)),
            float(p["resume_deadline_s"]),
        )
        resumed_at = [s.ready_at[n] - t_kill for s, n in zip(sockets, before, strict=True) if len(s.ready_at) > n]
        all_back_s = round(max(resumed_at), 2) if back and resumed_at else None
        log(f"storm: {len(resumed_at)}/{len(sockets)} back; all within {all_back_s} s of the kill")
        await asyncio.sleep(float(p.get("after_s", 2.0)))
        sent: list[list[Any]] = []
        if sender is not None:
            sender.send_signal(signal.SIGINT)
            assert sender.stdout is not None
            done = json.loads((await asyncio.wait_for(sender.stdout.readline(), 60)) or b"{}")
            await sender.wait()
            sent = done.get("sent", [])
        await asyncio.sleep(float(p.get("drain_s", 2.0)))
        stop.set()
        await asyncio.gather(*lives, return_exceptions=True)
    finally:
        accepting.cancel()
        if replacement is not None:
            stop_server(replacement)
    expected: dict[tuple[str, int], set[int]] = {}
    for kind, key, row_id in sent:
        expected.setdefault((kind, key), set()).add(row_id)
    lost = doubled = 0
    lost_by_kind: Counter[str] = Counter()
    lost_examples: list[Json] = []
    for s in sockets:
        key = s.conversation if s.kind == "message" else s.user["id"]
        missing = expected.get((s.kind, key), set()) - set(s.seen)
        lost += len(missing)
        lost_by_kind[s.kind] += len(missing)
        if missing and len(lost_examples) < 20:
            lost_examples.append(
                {"path": s.path, "user": s.user["id"], "missing": sorted(missing)[:5], "closes": s.closes}
            )
        doubled += sum(1 for row_id, n in s.seen.items() if n > 1)
    closes: Counter[str] = Counter()
    for s in sockets:
        closes.update(s.closes)
    return {
        **result,
        "mode": "failover" if standby else "restart",
        "accepting_s": accepting.result() if accepting.done() and not accepting.cancelled() else None,
        "resumed": len(resumed_at),
        "all_back_s": all_back_s,
        "resume": latency_summary([int(x * 1e9) for x in resumed_at]),
        "sent": len(sent),
        "send_errors": sum(1 for kind, _, _ in sent if kind == "error"),
        "expected_deliveries": sum(
            len(expected.get((s.kind, s.conversation if s.kind == "message" else s.user["id"]), ())) for s in sockets
        ),
        "lost": lost,
        "lost_by_kind": dict(lost_by_kind),
        "lost_examples": lost_examples,
        "doubled": doubled,
        "refused_flooding": sum(1 for s in sockets if s.closes.get(str(FLOODING))),
        "stopped": dict(Counter(str(s.stopped_by) for s in sockets if s.stopped_by)),
        "truncated": sum(1 for s in sockets if s.truncated),
        "close_codes": dict(closes),
        "attempts_max": max((sum(s.closes.values()) for s in sockets), default=0),
    }


SCENARIOS = {"fanout": fanout, "notify": notify, "dm": dm, "idle": idle, "costs": costs, "storm": storm}


async def amain(cfg: Json) -> Json:
    """Run the configured scenario under a hard time limit."""
    target = Target(cfg["target"])
    pids = {k: v for k, v in cfg.get("pids", {}).items() if v}
    window = CpuWindow(pids)
    async with asyncio.timeout(float(cfg.get("timeout_s", 300))):
        return await SCENARIOS[cfg["scenario"]](cfg, target, window)


def main() -> None:
    """Entry point: read the config from stdin, print the result as the last stdout line."""
    raise_nofile()
    cfg = json.load(sys.stdin)
    result = asyncio.run(amain(cfg))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
