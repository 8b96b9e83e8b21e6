"""Named leases in the database: who holds a name, until when, with which fencing token.

One row per name in ``leases``, kept after release so that ``token`` only ever grows: a
holder that lost its lease (it expired and someone else claimed it) is told apart from the
current one by the token it was given. Two uses share the table:

* sweeps that one node at a time should run (the Checker's), held for ``lease_seconds``
  and claimed again by anyone once expired;
* resource locks held by a task (``resource:<name>`` held by ``task:<id>``), with no
  expiry: the task's own lifecycle releases them when it stops working on the resource
  (see :mod:`taskscheduler.tasks.effects`), so a slow task never loses its lock to a timer.

Every function works inside the caller's transaction, so taking a lock and moving the task
that needs it commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, insert, or_, select, update

from taskscheduler.db.tables import LEASES

_c = LEASES.c


def claim(
    conn: Connection, name: str, holder: str, now: datetime, expires_at: datetime | None
) -> int | None:
    """Take ``name`` for ``holder`` if it is free, expired or already ``holder``'s.

    Returns the fencing token, or None when someone else holds it. A name never seen
    before is inserted; two first claims race on the primary key and one insert is ignored.
    """
    free = or_(
        _c.holder.is_(None),
        _c.holder == holder,
        and_(_c.expires_at.is_not(None), _c.expires_at < now),
    )
    taken = conn.execute(
        update(LEASES)
        .where(_c.name == name, free)
        .values(holder=holder, token=_c.token + 1, expires_at=expires_at)
    )
    if taken.rowcount == 0:
        ignore = "OR IGNORE" if conn.dialect.name == "sqlite" else "IGNORE"
        inserted = conn.execute(
            insert(LEASES)
            .prefix_with(ignore)
            .values(name=name, holder=holder, token=1, expires_at=expires_at)
        )
        if inserted.rowcount == 0:
            return None
    return int(conn.execute(select(_c.token).where(_c.name == name)).scalar_one())


def renew(conn: Connection, name: str, token: int, now: datetime, expires_at: datetime) -> bool:
    """Move the expiry of ``name`` to ``expires_at`` if ``token`` is still the current,
    unexpired lease; False tells a holder that it lost it."""
    live = or_(_c.expires_at.is_(None), _c.expires_at >= now)
    renewed = conn.execute(
        update(LEASES)
        .where(_c.name == name, _c.token == token, _c.holder.is_not(None), live)
        .values(expires_at=expires_at)
    )
    return bool(renewed.rowcount == 1)


def release_token(conn: Connection, name: str, token: int) -> bool:
    """Free ``name`` if ``token`` is still the current lease (a stale holder frees nothing)."""
    freed = conn.execute(
        update(LEASES)
        .where(_c.name == name, _c.token == token, _c.holder.is_not(None))
        .values(holder=None, expires_at=None)
    )
    return bool(freed.rowcount == 1)


def holder_of(conn: Connection, name: str, now: datetime) -> str | None:
    """Who holds ``name`` right now (None: free or expired)."""
    row = conn.execute(select(_c.holder, _c.expires_at).where(_c.name == name)).one_or_none()
    if row is None or row.holder is None or (row.expires_at and row.expires_at < now):
        return None
    return str(row.holder)


def release(conn: Connection, holder: str, names: Iterable[str] | None = None) -> list[str]:
    """Give up ``holder``'s leases (all of them, or only ``names``); returns the names freed."""
    condition = _c.holder == holder
    if names is not None:
        condition = and_(condition, _c.name.in_(list(names)))
    freed = [str(n) for n in conn.execute(select(_c.name).where(condition)).scalars()]
    if freed:
        conn.execute(update(LEASES).where(condition).values(holder=None, expires_at=None))
    return freed
