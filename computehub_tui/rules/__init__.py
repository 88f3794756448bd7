"""The rule language: grammar, parser with positioned errors, compiled rules and a pure evaluator."""
