"""Benchmarks for computehub-tui: startup, filtering 20,000 offers, memory and idle CPU (`make bench`)."""
