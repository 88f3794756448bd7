"""Automation in the engine: facts for rules, the rule runner and its safety, the lease, and ``hub.rules``."""
