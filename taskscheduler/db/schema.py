"""The start-up check: a scheduler never runs against a schema it was not written for.

Migrations are applied by an operator (``taskconsole db upgrade``), never implicitly at
start-up: with several nodes, an implicit upgrade would race, and a rolling deploy must be
able to refuse rather than silently change a shared database.
"""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from taskscheduler.db import migrate
from taskscheduler.errors import SchemaOutdated


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutdated` unless the database is at the migrations' head."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    needed = migrate.head()
    if current != needed:
        raise SchemaOutdated(current, needed)
