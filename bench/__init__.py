"""Benchmarks: callqa against the seed pipeline (``python -m bench.run``, see bench/README.md)."""
