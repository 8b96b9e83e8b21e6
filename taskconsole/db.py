"""``taskconsole db``: the only command that touches the database directly.

Migrations are an operator's deliberate act, so they run from the console against
``TASK_DB_URL`` (or ``--db-url``), never implicitly when a scheduler starts.

SQLAlchemy, alembic and the scheduler's settings are imported inside the commands: every
other command speaks HTTP only, and the console starts without them (they take longer to
import than the console takes to start and ask).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from taskconsole.exit_codes import ExitCode

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError


def _db_url(given: str | None) -> str:
    from taskscheduler.settings import load
    from taskworker.config import SettingsError

    try:
        return load(db_url=given).db_url
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(ExitCode.USAGE) from None


def _fail(exc: SQLAlchemyError) -> None:
    from sqlalchemy.exc import OperationalError

    reason = getattr(exc, "orig", None) or exc
    code = ExitCode.UNREACHABLE if isinstance(exc, OperationalError) else 1
    click.echo(f"error: database: {reason}", err=True)
    raise SystemExit(code)


def _migrate(db_url: str | None, step: Callable[[str, str], None], revision: str) -> None:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from taskscheduler.db import migrate

    url = _db_url(db_url)
    try:
        step(url, revision)
        click.echo(f"database at revision {migrate.current(url) or 'base (empty)'}")
    except SQLAlchemyError as exc:
        _fail(exc)
    except CommandError as exc:  # an unknown revision, or no migration scripts found
        click.echo(f"error: migrations: {exc}", err=True)
        raise SystemExit(ExitCode.USAGE) from None


db_url_option = click.option("--db-url", help="SQLAlchemy URL; defaults to TASK_DB_URL.")


@click.group()
def db() -> None:
    """Schema migrations of the scheduler's database."""


@db.command()
@db_url_option
@click.option("-r", "--revision", default="head", show_default=True)
def upgrade(db_url: str | None, revision: str) -> None:
    """Apply the migrations up to REVISION."""
    from taskscheduler.db import migrate

    _migrate(db_url, migrate.upgrade, revision)


@db.command()
@db_url_option
@click.option(
    "-r", "--revision", default="-1", show_default=True, help="Target; 'base' removes all."
)
def downgrade(db_url: str | None, revision: str) -> None:
    """Undo migrations down to REVISION."""
    from taskscheduler.db import migrate

    _migrate(db_url, migrate.downgrade, revision)


@db.command()
@db_url_option
def current(db_url: str | None) -> None:
    """Show the database's revision and the one this code needs."""
    from sqlalchemy.exc import SQLAlchemyError

    from taskscheduler.db import migrate

    url = _db_url(db_url)
    try:
        click.echo(f"database: {migrate.current(url) or 'empty'}; code needs: {migrate.head()}")
    except SQLAlchemyError as exc:
        _fail(exc)
