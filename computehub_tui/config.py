"""User configuration: where files live, the TOML config file, and environment overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from platformdirs import user_config_path, user_data_path
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

APP_NAME = "computehub-tui"
CONFIG_FILE_NAME = "config.toml"
INSTANCES_INTERVAL_FLOOR_S = 2.0
INTERVAL_CEILING_S = 86_400.0
"""No refresh interval is longer than a day: anything longer is a typo (or ``inf``)."""
MAX_DISK_GB = 10_000

ENDPOINT_ENV: dict[tuple[str, str], str] = {
    ("vast", "url"): "COMPUTEHUB_VAST_URL",
    ("runpod", "graphql_url"): "COMPUTEHUB_RUNPOD_GRAPHQL_URL",
    ("runpod", "rest_url"): "COMPUTEHUB_RUNPOD_REST_URL",
    ("lambda", "url"): "COMPUTEHUB_LAMBDA_URL",
    ("tensordock", "url"): "COMPUTEHUB_TENSORDOCK_URL",
}


class ConfigError(Exception):
    """The config file cannot be used; the message names the file and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _endpoint_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint URLs are http:// or https:// with a host, not {value!r}")
    return value


class _ProviderSection(_Section):
    enabled: bool = True
    """False keeps the provider off even when a key is bound."""


class VastSettings(_ProviderSection):
    url: str = "https://console.vast.ai"

    _check_url = field_validator("url")(_endpoint_url)


class RunpodSettings(_ProviderSection):
    graphql_url: str = "https://api.runpod.io/graphql"
    rest_url: str = "https://api.runpod.io/v2"

    _check_urls = field_validator("graphql_url", "rest_url")(_endpoint_url)


class LambdaSettings(_ProviderSection):
    url: str = "https://cloud.lambda.ai/api/v1"
    ssh_key_name: str = ""
    """The name of an SSH key registered at cloud.lambda.ai; Lambda requires exactly one per launch."""

    _check_url = field_validator("url")(_endpoint_url)


class TensordockSettings(_ProviderSection):
    url: str = "https://dashboard.tensordock.com/api/v2"
    ssh_public_key: str = ""
    """Public key text (ssh-ed25519 …) put on new TensorDock VMs."""

    _check_url = field_validator("url")(_endpoint_url)


class Config(_Section):
    """Everything a user can set in ``config.toml``; every field has a sensible default."""

    offers_interval_s: float = Field(60.0, ge=10.0, le=INTERVAL_CEILING_S)
    instances_interval_s: float = Field(5.0, le=INTERVAL_CEILING_S)
    default_disk_gb: int = Field(20, ge=1, le=MAX_DISK_GB)
    min_reliability: float = Field(0.95, ge=0.0, le=1.0)
    offer_limit: int = Field(10_000, ge=100, le=50_000)
    """Most offers asked of one provider per refresh (Vast returns thousands)."""
    demo_seed: int = 42
    demo_vast_offers: int = Field(3200, ge=100, le=30_000)
    """Machines in the demo's simulated Vast market; 18000 gives a ~20,000-offer table."""
    vast: VastSettings = VastSettings()
    runpod: RunpodSettings = RunpodSettings()
    lambda_: LambdaSettings = Field(LambdaSettings(), alias="lambda")
    tensordock: TensordockSettings = TensordockSettings()

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)
    _source_dir: Path | None = PrivateAttr(None)

    @property
    def templates_dir(self) -> Path | None:
        """User templates live in ``templates/`` next to the config file."""
        return self._source_dir / "templates" if self._source_dir else None

    @field_validator("instances_interval_s")
    @classmethod
    def _floor_interval(cls, value: float) -> float:
        # Polling faster than this only burns the provider's rate limit (k9s uses the same floor).
        return max(INSTANCES_INTERVAL_FLOOR_S, value)

    def provider_settings(self, provider: str) -> _ProviderSection:
        return {"vast": self.vast, "runpod": self.runpod, "lambda": self.lambda_,
                "tensordock": self.tensordock}[provider]


def default_config_dir() -> Path:
    return user_config_path(APP_NAME, appauthor=False)


def default_data_dir() -> Path:
    return user_data_path(APP_NAME, appauthor=False)


def load_config(path: Path | None, environ: Mapping[str, str] | None = None, *, must_exist: bool = False) -> Config:
    """Read ``path`` and apply the endpoint environment variables. A missing file means defaults,
    unless ``must_exist`` (the user named the file, so a typo must not silently mean defaults)."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None and must_exist and not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if path is not None and path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot read ({error})") from None
    from_environment: dict[tuple[str, str], str] = {}
    for (section, field), variable in ENDPOINT_ENV.items():
        if environ.get(variable):
            raw.setdefault(section, {})
            if isinstance(raw[section], dict):
                raw[section][field] = environ[variable]
                from_environment[(section, field)] = variable
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(str(part) for part in first["loc"])
        where = ".".join(location) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        variable = from_environment.get((location[0], location[1]), "") if len(location) == 2 else ""
        if variable:
            raise ConfigError(f"{variable} (for '{where}'): {message}") from None
        source = str(path) if path is not None else "configuration"
        raise ConfigError(f"{source}: field '{where}': {message}") from None
    config._source_dir = path.parent if path is not None else None
    return config
