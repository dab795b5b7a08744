"""Benchmarks: each prints its figures as ratios to a baseline from the same run."""
