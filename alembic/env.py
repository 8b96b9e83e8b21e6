"""Alembic environment: the schema is the models' metadata; the URL is the caller's.

``taskconsole db upgrade`` passes an open connection (``config.attributes["connection"]``),
so SQLite gets the same pragmas as at run time; the plain ``alembic`` command takes the URL
from ``-x db_url=...`` or from the settings (``TASK_DB_URL``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from taskscheduler.db.engine import make_engine
from taskscheduler.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("db_url")
    if url:
        return url
    from taskscheduler.settings import load

    return load().db_url


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if config.config_file_name:  # the alembic command: its progress lines, per alembic.ini
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
