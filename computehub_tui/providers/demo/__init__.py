"""Demo mode: a simulated marketplace that answers in each provider's real wire format (adapters.py wires the real
adapters to it). Nothing is imported here, so the demo's small programs (its ssh) start cheaply."""
