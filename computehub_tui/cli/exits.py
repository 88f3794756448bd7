"""Exit codes and the exceptions that end a command early with one readable line."""

from __future__ import annotations

PROG = "computehub-tui"

EXIT_OK = 0
EXIT_FAILED = 1
"""A provider failed (also when others answered: partial results), or the database could not be written."""
EXIT_USAGE = 2
EXIT_INTERNAL = 70
"""A bug (EX_SOFTWARE): an exception nobody expected."""
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The user asked for something malformed; exit code 2."""


class CommandFailed(Exception):
    """The command cannot go on (a provider failed, the target does not exist); exit code 1."""


class Cancelled(Exception):
    """The user pressed Ctrl+C (or closed the input) at a prompt; exit code 130."""
