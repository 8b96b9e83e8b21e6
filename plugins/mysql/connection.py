"""Where a MySQL plugin connects, and with which credentials — never from stored params.

Params name an instance (``{"host": ..., "port": ...}``) and a *credentials reference*
(``"credentials": "ops"``); the worker resolves the reference on its own machine, so no
password is ever stored in the scheduler's database, returned by the API or written to a
log. A reference resolves, in order, from

1. the environment: ``TASK_CRED_<NAME>_USER`` and ``TASK_CRED_<NAME>_PASSWORD``
   (``<NAME>`` upper-cased, ``-`` as ``_``);
2. the TOML file named by ``TASK_CREDENTIALS_FILE``: a table ``[name]`` with ``user`` and
   ``password``.

An unknown reference fails the task without retrying: retrying cannot make it appear.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

import pymysql

from taskworker import TaskFailed

#: The params every MySQL plugin shares; plugins extend ``properties`` and ``required``.
INSTANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "host": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
    "required": ["host"],
    "additionalProperties": False,
}
CREDENTIALS_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"}
#: A database, user or table name; quoted with backticks, so exclude them and keep it simple.
IDENTIFIER_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9_$]{1,64}$"}
CONNECT_TIMEOUT_SECONDS = 10


def on_instance(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """The params schema of a plugin acting on one instance: ``instance`` and
    ``credentials``, plus the plugin's own ``properties`` (``required`` among them)."""
    return {
        "type": "object",
        "properties": {
            "instance": INSTANCE_SCHEMA,
            "credentials": CREDENTIALS_SCHEMA,
            **properties,
        },
        "required": ["instance", "credentials", *required],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)


def variables(reference: str) -> tuple[str, str]:
    """The environment variables that hold ``reference``'s user and password."""
    key = reference.upper().replace("-", "_")
    return f"TASK_CRED_{key}_USER", f"TASK_CRED_{key}_PASSWORD"


def resolve(reference: str) -> Credentials:
    user_variable, password_variable = variables(reference)
    user = os.environ.get(user_variable)
    if user is not None:
        return Credentials(user, os.environ.get(password_variable, ""))
    path = os.environ.get("TASK_CREDENTIALS_FILE")
    if path:
        try:
            with open(path, "rb") as handle:
                table = tomllib.load(handle).get(reference)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TaskFailed(f"credentials file {path}: {exc}", retryable=False) from None
        if isinstance(table, dict) and "user" in table:
            return Credentials(str(table["user"]), str(table.get("password", "")))
    raise TaskFailed(f"unknown credentials reference {reference!r}", retryable=False)


def instance_key(instance: dict[str, Any]) -> str:
    """The resource name of an instance, the prefix of every lock a plugin takes on it."""
    return f"mysql:{instance['host']}:{instance.get('port', 3306)}"


def connect(instance: dict[str, Any], reference: str, database: str | None = None) -> Any:
    creds = resolve(reference)
    try:
        return pymysql.connect(
            host=instance["host"],
            port=int(instance.get("port", 3306)),
            user=creds.user,
            password=creds.password,
            database=database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            autocommit=True,
            charset="utf8mb4",
        )
    except pymysql.err.OperationalError as exc:
        raise TaskFailed(f"cannot connect to {instance_key(instance)}: {exc.args[-1]}") from None


def quote(identifier: str) -> str:
    """Backtick-quote an identifier that the params schema already restricted."""
    return f"`{identifier}`"
