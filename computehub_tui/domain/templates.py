"""Launch templates: an image with its ports, environment, disk and start script, validated."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_PORT = re.compile(r"^\d{1,5}/(tcp|udp|http)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
MAX_ONSTART_CHARS = 16_000


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    title: str
    image: str
    ports: tuple[str, ...] = ("22/tcp",)
    env: dict[str, str] = field(default_factory=dict)
    disk_gb: int = 20
    onstart: str = ""
    jupyter: bool = False
    description: str = ""
    source: str = "built-in"
    """Where it came from: "built-in" or the user's file path."""


class _TemplateSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = ""
    image: str = Field(min_length=1)
    ports: list[str] = ["22/tcp"]
    env: dict[str, str] = {}
    disk_gb: int = Field(20, ge=1, le=10_000)
    onstart: str = Field("", max_length=MAX_ONSTART_CHARS)
    jupyter: bool = False
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits, '-' or '_' (e.g. my-llm)")
        return value

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, value: list[str]) -> list[str]:
        for port in value:
            if not _PORT.match(port) or not 0 < int(port.split("/")[0]) < 65536:
                raise ValueError(f"'{port}' is not PORT/tcp, PORT/udp or PORT/http")
        return value

    @field_validator("image")
    @classmethod
    def _valid_image(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("an image reference has no spaces (e.g. pytorch/pytorch:latest)")
        return value


def template_from_mapping(data: dict[str, Any], source: str) -> Template:
    """Validate one template's fields; raises TemplateError naming ``source`` and the field."""
    try:
        parsed = _TemplateSchema.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise TemplateError(f"{source}: field '{where}': {message}") from None
    return Template(
        name=parsed.name, title=parsed.title or parsed.name, image=parsed.image, ports=tuple(parsed.ports),
        env=dict(parsed.env), disk_gb=parsed.disk_gb, onstart=parsed.onstart, jupyter=parsed.jupyter,
        description=parsed.description, source=source,
    )
