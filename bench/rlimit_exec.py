"""Raise RLIMIT_NOFILE to the hard limit, then exec the given command (keeps the pid)."""

from __future__ import annotations

import os
import resource
import sys


def raise_nofile() -> int:
    """Lift the soft file-descriptor limit to the hard limit and return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    """Entry point: ``python -m bench.rlimit_exec CMD [ARGS...]``."""
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m bench.rlimit_exec CMD [ARGS...]")
    raise_nofile()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
