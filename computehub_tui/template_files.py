"""Reads launch templates: the built-in data files, then the user's TOML files, which win by name."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from computehub_tui.domain.templates import Template, TemplateError, template_from_mapping


def builtin_templates() -> list[Template]:
    templates = []
    for entry in sorted(resources.files("computehub_tui.templates").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            templates.append(template_from_mapping(data, "built-in"))
    return templates


def load_templates(user_dir: Path | None) -> tuple[list[Template], list[str]]:
    """Every usable template, and one readable line per user file that could not be used.

    A broken user file never hides the built-ins or the other user files.
    """
    by_name = {template.name: template for template in builtin_templates()}
    order = list(by_name)
    errors: list[str] = []
    if user_dir is not None and user_dir.is_dir():
        for path in sorted(user_dir.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
                template = template_from_mapping(data, str(path))
            except tomllib.TOMLDecodeError as error:
                errors.append(f"{path}: not valid TOML ({error})")
                continue
            except (OSError, UnicodeDecodeError) as error:
                errors.append(f"{path}: cannot read ({error})")
                continue
            except TemplateError as error:
                errors.append(str(error))
                continue
            if template.name not in by_name:
                order.append(template.name)
            by_name[template.name] = template
    return [by_name[name] for name in order], errors
