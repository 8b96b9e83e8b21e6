"""JSON built by the database itself, alike on MariaDB/MySQL and SQLite.

A page of tasks read column by column costs the API more than everything else it does for
the request: pymysql parses every field of every row in Python (38 fields, 50 rows), and
each time and JSON value is converted again on top. Asked for one JSON object per row, the
database renders it in C, the driver hands over one string per row, and
:mod:`msgspec` decodes it straight into the typed view (docs/performance.md). These are
the few pieces whose SQL differs between the two databases.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, func, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

#: ``DATE_FORMAT`` of a naive UTC ``DATETIME(6)`` as ISO 8601 with its zone.
_MYSQL_ISO_UTC = "%Y-%m-%dT%H:%i:%s.%fZ"


class iso_utc(FunctionElement[str]):
    """A stored UTC time (naive, see :class:`~taskscheduler.db.models.UTCDateTime`) as an
    ISO 8601 string ending in ``Z``; NULL stays NULL."""

    type = String()
    inherit_cache = True


@compiles(iso_utc, "mysql")
def _iso_utc_mysql(element: iso_utc, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return str(compiler.process(func.date_format(column, _MYSQL_ISO_UTC), **kw))


@compiles(iso_utc, "sqlite")
def _iso_utc_sqlite(element: iso_utc, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff" on SQLite
    (column,) = element.clauses
    return f"(replace({compiler.process(column, **kw)}, ' ', 'T') || 'Z')"


class embedded_json(FunctionElement[Any]):
    """A JSON column's value as JSON inside a JSON object, not as a string holding it."""

    inherit_cache = True


@compiles(embedded_json, "mysql")
def _embedded_json_mysql(element: embedded_json, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses  # MariaDB and MySQL embed a JSON column as it is
    return str(compiler.process(column, **kw))


@compiles(embedded_json, "sqlite")
def _embedded_json_sqlite(element: embedded_json, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return f"json({compiler.process(column, **kw)})"


def json_object(pairs: Iterable[tuple[str, ColumnElement[Any]]]) -> ColumnElement[str]:
    """``JSON_OBJECT(key, value, ...)``; the keys are written into the statement (they are
    names of our own, never user input), not sent as parameters with every execution."""
    arguments: list[ColumnElement[Any]] = []
    for key, value in pairs:
        if not key.isidentifier():
            raise ValueError(f"not a plain key: {key!r}")
        arguments += [literal_column(f"'{key}'"), value]
    return func.json_object(*arguments, type_=String())
