"""Errors only the scheduler raises, on top of the shared tree in ``taskworker.errors``::

TaskError (taskworker.errors)
 └── Unavailable                    503
      └── SchemaOutdated(current, needed)   the database is not at this code's revision
"""

from __future__ import annotations

from taskworker.errors import Unavailable


class SchemaOutdated(Unavailable):
    """The scheduler refuses to run on a schema other than the one its code was written for."""

    def __init__(self, current: str | None, needed: str) -> None:
        found = "has no schema" if current is None else f"is at revision {current}"
        super().__init__(
            f"the database {found}, this code needs {needed}: run `taskconsole db upgrade`",
            retry_after=60,
        )
        self.current = current
        self.needed = needed
