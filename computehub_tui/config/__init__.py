"""User configuration: one TOML file with sections, environment overrides for every key, flags on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from platformdirs import user_config_path, user_data_path
from pydantic import PrivateAttr

from computehub_tui.config.loader import DEFAULT, ConfigError, Origin, Problem, environment_of, read_layers, validate
from computehub_tui.config.schema import ProviderSection, Settings

APP_NAME = "computehub-tui"
CONFIG_FILE_NAME = "config.toml"
CONFIG_ENV = "COMPUTEHUB_CONFIG"

__all__ = [
    "APP_NAME", "CONFIG_FILE_NAME", "Config", "ConfigError", "Origin", "Problem", "config_file_path",
    "default_config_dir", "default_data_dir", "load_config",
]


class Config(Settings):
    """The effective settings of one run, with the file they were read from and each value's origin."""

    _path: Path | None = PrivateAttr(None)
    _origins: dict[str, Origin] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> Path | None:
        """The config file this run uses (it may not exist yet)."""
        return self._path

    def origin(self, key: str) -> Origin:
        """Where the effective value of ``key`` (e.g. ``poll.instances_s``) came from."""
        return self._origins.get(key, DEFAULT)

    def alert_channel_gaps(self) -> list[str]:
        """Why a channel whose section names some setting still cannot send (see ``AlertsSection.channel_gaps``)."""
        present = {key.split(".")[1] for key in self._origins if key.startswith("alerts.") and key.count(".") >= 2}
        return self.alerts.channel_gaps(present)

    @property
    def templates_dir(self) -> Path | None:
        """User templates live in ``templates/`` next to the config file."""
        return self._path.parent / "templates" if self._path else None

    @property
    def rules_path(self) -> Path:
        """The rule file ``[automation] rules_file`` names; a relative name is relative to the config file's
        folder (the user config dir when there is no file)."""
        named = Path(self.automation.rules_file).expanduser()
        return named if named.is_absolute() else (self._path.parent if self._path else default_config_dir()) / named

    def provider_settings(self, provider: str) -> ProviderSection:
        return self.providers.of(provider)


def default_config_dir() -> Path:
    return user_config_path(APP_NAME, appauthor=False)


def default_data_dir() -> Path:
    return user_data_path(APP_NAME, appauthor=False)


def config_file_path(flag: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The config file (``--config``, else ``COMPUTEHUB_CONFIG``, else the user config dir) and whether
    the user named it (a named file must exist: a typo must not silently mean defaults)."""
    if flag is not None:
        return flag.expanduser(), True
    named = environment_of(environ).get(CONFIG_ENV)
    if named:
        return Path(named).expanduser(), True
    return default_config_dir() / CONFIG_FILE_NAME, False


def load_config(path: Path | None, environ: Mapping[str, str] | None = None, *, must_exist: bool = False,
                flags: Sequence[str] = ()) -> Config:
    """Defaults < ``path`` < environment < ``flags`` (``KEY=VALUE``). Raises ConfigError naming the
    file and line, the variable or the flag, and the dotted key of every problem."""
    environ = environment_of(environ)
    if path is not None and must_exist and not path.exists():
        raise ConfigError([Problem(str(path), "", "config file does not exist")])
    layers = read_layers(path, environ, flags)
    settings = validate(layers, str(path) if path is not None else "configuration")
    config = Config.model_validate(settings.model_dump(by_alias=True))
    config._path = path
    config._origins = dict(layers.origins)
    return config
