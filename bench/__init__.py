"""Benchmark suite: the real app against a plain-websockets ceiling (P0) and the naive tutorial consumer (P1).

Run with ``python -m bench.run`` (``make bench``); see docs/benchmarks.md.
"""
