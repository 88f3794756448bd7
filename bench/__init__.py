"""computehub-tui benchmarks (`make bench`): startup, 20,000-offer tables, memory, idle CPU."""
