"""Benchmark suite: the real app against a plain-websockets ceiling (P0) and the naive tutorial consumer (P1).

Run with ``python -m bench.run`` (``make bench``); see docs/benchmarks.md. ``run`` is the entry point,
``harness`` the servers and load-generator runs, ``scenarios`` one module per scenario, ``report``
the tables and target verdicts.
"""
