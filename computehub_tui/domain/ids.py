"""What each provider's instance IDs look like, so a malformed ID is refused before anything is sent."""

from __future__ import annotations

import re

_INSTANCE_ID: dict[str, tuple[re.Pattern[str], str]] = {
    # Vast contract IDs are integers (``new_contract``), e.g. 9104662.
    "vast": (re.compile(r"[0-9]{1,15}"), "digits, e.g. 9104662"),
    # RunPod pod IDs are lower-case base-36 strings, e.g. ldl1dxirsim64n.
    "runpod": (re.compile(r"[a-z0-9]{1,64}"), "lower-case letters and digits, e.g. ldl1dxirsim64n"),
    # Lambda returns 32 hex digits; dashes are tolerated in case it ever sends the UUID form.
    "lambda": (re.compile(r"[0-9a-fA-F][0-9a-fA-F-]{7,63}"), "hex digits, e.g. 0920582c7ff041399e34823a0be62549"),
    "tensordock": (re.compile(r"[0-9a-fA-F][0-9a-fA-F-]{7,63}"),
                   "a UUID, e.g. 0c5a3a5e-2d8b-4f0e-9b1e-7a6c5d4e3f21"),
}


def instance_id_problem(provider: str, instance_id: str) -> str:
    """Why ``instance_id`` cannot be one of ``provider``'s instance IDs, or "" if it can be.

    The rules are loose on purpose (length and alphabet only): they exist to stop typos and
    injection (``/``, ``?``, spaces, escape sequences) from reaching a URL path, not to guess
    which IDs a provider will accept."""
    rule = _INSTANCE_ID.get(provider)
    if rule is None:
        return f"unknown provider {provider!r}"
    pattern, looks_like = rule
    if pattern.fullmatch(instance_id):
        return ""
    return f"{provider} instance IDs are {looks_like}"
