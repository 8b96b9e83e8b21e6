"""What every command shares: the global options, the API client built from them, the output.

The client is built on first use, so ``db upgrade`` and ``--help`` never need a scheduler,
and closed when the command ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from taskconsole.client import ApiClient, ConsoleError
from taskconsole.exit_codes import ExitCode
from taskconsole.render import Output

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds between two polls of ``watch``, ``logs -f`` and ``submit --wait``.
DEFAULT_POLL_SECONDS = 0.5


class Session:
    def __init__(self, ctx: click.Context, url: str, token: str | None, timeout: float) -> None:
        self._ctx = ctx
        self._url = url
        self._token = token
        self._timeout = timeout
        self._client: ApiClient | None = None
        self.out = Output(as_json=False)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self._url, self._token, self._timeout)
            self._ctx.call_on_close(self._client.close)
        return self._client


def pass_session(command: F) -> F:
    """Hand the command the session, with ``--json`` honoured wherever it was given."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, as_json: bool, **kwargs: Any) -> Any:
        session = ctx.find_object(Session)
        assert session is not None, "commands run under the taskconsole group"
        session.out.as_json = session.out.as_json or as_json
        return command(session, *args, **kwargs)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    return wrapper  # type: ignore[return-value]


poll_option = click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_POLL_SECONDS,
    show_default=True,
    help="Seconds between polls.",
)


def read_json_file(path: Path, option: str) -> Any:
    """A JSON document given on the command line; a bad one is a usage error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConsoleError(
            f"{option}: cannot read {path}: {exc.strerror}", ExitCode.USAGE
        ) from None
    except ValueError as exc:
        raise ConsoleError(f"{option}: {path} is not valid JSON ({exc})", ExitCode.USAGE) from None


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConsoleError(f"{option}: not valid JSON ({exc})", ExitCode.USAGE) from None
