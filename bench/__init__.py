"""Benchmarks: figures against baselines measured in the same run (bench/README.md)."""
