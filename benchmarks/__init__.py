"""Benchmarks (see benchmarks/README section in the top-level README)."""
