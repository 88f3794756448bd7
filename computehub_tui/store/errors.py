"""The one error type the store raises: a readable single line naming the database file."""

from __future__ import annotations


class StoreError(Exception):
    """A database operation failed. ``str(error)`` is one line fit to show the user.

    ``kind`` lets callers react without parsing text: ``"disk-full"``, ``"busy"``, ``"read-only"``,
    ``"corrupt"``, ``"empty"``, ``"newer-schema"``, ``"cannot-open"``, ``"closed"`` or ``"error"``.
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(" ".join(message.split()))
        self.kind = kind
