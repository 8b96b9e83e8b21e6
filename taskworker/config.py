"""Loading settings: ``TASK_*`` environment variables over an optional TOML file over defaults.

Both processes (scheduler and worker) read their settings through :func:`load_settings`, so a
bad value fails the start-up the same way everywhere: one :class:`SettingsError` that names
the environment variable (or TOML key) and says what is wrong with it.

The TOML file is named by ``TASK_CONFIG``; its keys are the setting names without the prefix
(``db_url = "mysql+pymysql://..."``). Environment variables win over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "TASK_"
CONFIG_ENV = "TASK_CONFIG"
#: The shortest shared secret accepted (``TASK_WORKER_SECRET``): 16 bytes, 128 bits, so the
#: HMAC key cannot be guessed; scheduler and workers read the same rule from here.
MIN_SECRET_BYTES = 16


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it as the operator writes it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class TaskSettings(BaseSettings):
    """Base of every settings object: the prefix, the TOML source, strictness."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_ENV)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)


S = TypeVar("S", bound=TaskSettings)


def checked_secret(value: str | None) -> str | None:
    """A secret setting as a field validator sees it: empty is unset (None); a set one must
    have :data:`MIN_SECRET_BYTES` bytes. The message never repeats the value."""
    if not value:
        return None
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"must be at least {MIN_SECRET_BYTES} bytes (e.g. the output of openssl rand -hex 32)"
        )
    return value


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment, the TOML file and ``overrides`` (flags win)."""
    path = os.environ.get(CONFIG_ENV)
    if path and not Path(path).is_file():
        raise SettingsError(CONFIG_ENV, f"no such file {path!r}")
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{ENV_PREFIX}{field.upper()}", message) from None
    except ValueError as exc:  # a TOML syntax error, raised while reading the file
        raise SettingsError(CONFIG_ENV, str(exc)) from None
