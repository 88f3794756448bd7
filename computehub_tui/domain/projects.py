"""Project names: the short plain names instances are grouped by, and the default one a label implies."""

from __future__ import annotations

import re

from computehub_tui.domain.text import clean_text

MAX_PROJECT_NAME = 40
_PROJECT_NAME = re.compile(rf"[a-z0-9._-]{{1,{MAX_PROJECT_NAME}}}")
_RUN_NUMBER = re.compile(r"-\d+$")


class ProjectNameError(ValueError):
    """Text that cannot be a project name."""


def project_name(text: str) -> str:
    """``text`` case-folded, if it is 1–40 characters of a–z, 0–9, ``.``, ``_`` and ``-``."""
    name = text.strip().casefold()
    if not _PROJECT_NAME.fullmatch(name):
        raise ProjectNameError(f"a project name is 1-{MAX_PROJECT_NAME} characters of a-z, 0-9, '.', '_' and '-', "
                               f"not {clean_text(text, 60)!r}")
    return name


def project_from_label(label: str) -> str | None:
    """The project a label implies: the label up to its first ``/``, case-folded, without a trailing
    ``-<digits>`` ("llm-train-3" → "llm-train", "team/run" → "team", "sd-webui" → "sd-webui"); None
    when that is not a project name (empty, spaces, other characters)."""
    head = _RUN_NUMBER.sub("", label.split("/", 1)[0].strip().casefold())
    return head if _PROJECT_NAME.fullmatch(head) else None
