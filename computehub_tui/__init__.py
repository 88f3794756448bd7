"""computehub-tui: a keyboard-driven terminal cockpit for renting GPUs across marketplaces."""

__version__ = "0.1.0"
