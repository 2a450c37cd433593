"""Small helpers shared by the orchestrator and the load generator: /proc sampling, ports, stats."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, alive: object = None) -> bool:
    """Poll until something accepts TCP connections on 127.0.0.1:port, or the timeout passes.

    ``alive`` is an optional zero-argument callable; when it returns False the wait stops early.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def proc_cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds used so far by a process (all threads), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int | None:
    """Resident set size of a process in bytes, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except OSError:
        return None


def machine_cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies summed over all cores, from /proc/stat."""
    with open("/proc/stat", "rb") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return float(total - idle), float(total)


@dataclass
class CpuWindow:
    """CPU use of some processes and of the whole machine between start() and stop()."""

    pids: dict[str, int]

    def start(self) -> None:
        """Take the first sample."""
        self._t0 = time.monotonic()
        self._own0 = time.process_time()
        self._m0 = machine_cpu_times()
        self._p0 = {k: proc_cpu_seconds(p) for k, p in self.pids.items() if p}

    def stop(self) -> dict[str, float | None]:
        """Take the second sample; return CPU use as % of one core per process, machine as % of all cores."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        out: dict[str, float | None] = {"client_cpu_pct": round(100.0 * (time.process_time() - self._own0) / wall, 1)}
        for key, pid in self.pids.items():
            before = self._p0.get(key)
            after = proc_cpu_seconds(pid) if pid else None
            out[f"{key}_cpu_pct"] = (
                round(100.0 * (after - before) / wall, 1) if before is not None and after is not None else None
            )
        busy1, total1 = machine_cpu_times()
        dt = total1 - self._m0[1]
        out["machine_cpu_pct"] = round(100.0 * (busy1 - self._m0[0]) / dt, 1) if dt > 0 else None
        if out["machine_cpu_pct"] is not None:
            # Everything else on the machine (other test runs, builds), in % of one core: a noisy
            # neighbour on 2 cores skews every figure, so it is reported next to them.
            ours = sum(v for k, v in out.items() if k != "machine_cpu_pct" and v is not None)
            out["other_cpu_pct"] = round(max(0.0, out["machine_cpu_pct"] * (os.cpu_count() or 1) - ours), 1)
        return out


def background_cpu_pct(seconds: float = 2.0) -> float:
    """Machine CPU use over ``seconds`` in % of one core (run while the bench itself is idle)."""
    busy0, total0 = machine_cpu_times()
    time.sleep(seconds)
    busy1, total1 = machine_cpu_times()
    return round(100.0 * (busy1 - busy0) / max(total1 - total0, 1e-9) * (os.cpu_count() or 1), 1)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def latency_summary(latencies_ns: list[int]) -> dict[str, float | int | None]:
    """p50/p90/p99/max in milliseconds (rounded) and the sample count."""
    values = sorted(latencies_ns)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v / 1e6, 2)

    return {
        "n": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(float(values[-1]) if values else None),
    }


def redis_pid(url: str = "redis://127.0.0.1:6379/0") -> int | None:
    """Process id of the Redis server (for CPU sampling), or None when unknown."""
    try:
        import redis

        return int(redis.Redis.from_url(url, socket_timeout=2).info("server")["process_id"])
    except Exception:  # noqa: BLE001 - Redis is optional for sampling
        return None


def redis_used_memory(url: str = "redis://127.0.0.1:6379/0") -> int | None:
    """Redis ``used_memory`` in bytes, or None when Redis is not reachable."""
    try:
        import redis

        return int(redis.Redis.from_url(url, socket_timeout=2).info("memory")["used_memory"])
    except Exception:  # noqa: BLE001 - Redis is optional for sampling
        return None
