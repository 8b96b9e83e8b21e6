"""Running the alembic migrations from code (``taskconsole db upgrade``, tests, start-up checks).

The scripts live in ``alembic/`` at the root of the source tree (not a Python package, so it
never shadows the alembic library); ``TASK_MIGRATIONS_DIR`` points elsewhere when the project
is installed without its source tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from taskscheduler.db.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]


def migrations_dir() -> Path:
    return Path(os.environ.get("TASK_MIGRATIONS_DIR") or ROOT / "alembic")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def head() -> str:
    """The revision this code needs."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "the migration scripts have no head"
    return found


def _run(db_url: str, action: str, revision: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def upgrade(db_url: str, revision: str = "head") -> None:
    _run(db_url, "upgrade", revision)


def downgrade(db_url: str, revision: str = "base") -> None:
    _run(db_url, "downgrade", revision)


def current(db_url: str) -> str | None:
    """The revision the database is at; None for an empty database."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
