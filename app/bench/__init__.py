"""Benchmarks of the dispatch engine: seeded instances, timings and reference solvers."""
