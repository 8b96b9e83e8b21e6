"""Moving many tasks, or one task through a chain of triggers, in a few statements.

The hot paths move tasks by the hundred (a batch started, a batch of reports settled) and
settle an attempt in two moves (``succeed`` then ``finish``, ``fail`` then ``retry``);
statement and round trip counts, not rows, are what they cost. :func:`apply_many` decides
every move with :func:`~taskscheduler.tasks.transitions.chain`, exactly as one
:func:`~taskscheduler.tasks.transitions.apply_trigger` after another would, and writes the
tasks whose new columns are the same with one ``UPDATE``, all records with one ``INSERT``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection

from taskscheduler.db.models import utcnow
from taskscheduler.tasks import effects
from taskscheduler.tasks.guard import LOCKED_BY_IDS, Applied, GuardRow
from taskscheduler.tasks.transitions import Step, chain, make_record, side_effects, write_records
from taskscheduler.tasks.write import Add, write_task
from taskworker.errors import ConcurrentUpdate, NotFound, TaskError
from taskworker.states import Trigger


@dataclass(frozen=True, slots=True)
class Planned:
    """One task's part in :func:`apply_many`: the version the caller saw (None: whatever is
    stored), the extra columns to write, the reason for its first record (``then_reason``
    for the records of the moves after it), the outcome of a ``finish``, and the triggers
    applied ``then``, after the first, in the same write. ``seen``: the task's guard
    columns as the caller read them, so that a plan alone in its call is written without
    reading the row again."""

    task_id: int
    expect_version: int | None = None
    changes: Mapping[str, Any] | None = None
    reason: str | None = None
    outcome: str | None = None
    then: tuple[str, ...] = ()
    seen: GuardRow | None = None
    then_reason: str | None = None


#: One plan of :func:`apply_many`, with its row and its moves (each with the task before it).
_Group = tuple[Planned, GuardRow, list[Step]]


def apply_many(
    conn: Connection,
    trigger: str,
    planned: Sequence[Planned],
    *,
    actor: str,
    now: datetime | None = None,
    records: list[dict[str, Any]] | None = None,
) -> dict[int, Applied | TaskError]:
    """:func:`~taskscheduler.tasks.transitions.apply_trigger` for many tasks in a few
    statements, whatever their number.

    The rows are read and locked in one query (``FOR UPDATE``, in id order, so two callers
    never deadlock; SQLite's ``BEGIN IMMEDIATE`` already holds the write lock), each move is
    decided from them, the tasks whose new columns are the same are written by one UPDATE,
    and all records by one INSERT (or collected in ``records`` for the caller to write). A
    task that moved since its caller saw it, or whose move the table refuses, gets that
    error instead of an :class:`Applied` and is not written.

    A plan's ``then`` triggers follow ``trigger`` in the same UPDATE, each decided from the
    state the one before left and recorded on its own (``succeed`` then ``finish``;
    ``create`` then ``prepare``): the table is asked for every step, and a refused one leaves
    the task as it was. The :class:`Applied` holds every move.

    A single plan with its ``seen`` row (the idle path: one task started, one run reported)
    skips the read: its move is decided from ``seen`` and its UPDATE is conditional on
    ``seen.version``, as in ``apply_trigger``. Many plans are read and locked together,
    since one UPDATE per group cannot check each task's own version.
    """
    when = now or utcnow()
    alone = planned[0].seen if len(planned) == 1 else None
    rows: dict[int, GuardRow]
    if alone is not None:
        rows = {planned[0].task_id: alone}
    else:
        ids = sorted(p.task_id for p in planned)
        rows = {r.id: r for r in conn.execute(LOCKED_BY_IDS, {"ids": ids})}
    results: dict[int, Applied | TaskError] = {}
    groups: dict[bytes, list[_Group]] = {}
    for plan in planned:
        row = rows.get(plan.task_id)
        try:
            if row is None:
                raise NotFound("task", plan.task_id)
            if plan.expect_version not in (None, row.version):
                raise ConcurrentUpdate(plan.task_id)
            steps = chain(row, (trigger, *plan.then), task_id=plan.task_id, outcome=plan.outcome)
        except TaskError as exc:
            results[plan.task_id] = exc
            continue
        moves = [move for move, _ in steps]
        shape = [(m.trigger, m.to_state, m.outcome) for m in moves]
        key = msgspec.json.encode([shape, moves[-1].paused_from, plan.changes], order="sorted")
        groups.setdefault(key, []).append((plan, row, steps))
    collected: list[dict[str, Any]] = [] if records is None else records
    for group in groups.values():
        group_ids = [plan.task_id for plan, _, _ in group]
        seen_version = alone.version if alone is not None else None
        written = write_task(conn, group_ids, _new_columns(group[0], when), version=seen_version)
        if written != len(group_ids):
            if alone is None:  # impossible with the rows locked: stop here
                raise ConcurrentUpdate(group_ids[0])
            results[group_ids[0]] = ConcurrentUpdate(group_ids[0])  # it moved since seen
            continue
        for one in group:
            results[one[0].task_id] = _written(conn, one, collected, actor=actor, when=when)
    if records is None:
        write_records(conn, collected)
    return results


def _new_columns(group: _Group, when: datetime) -> dict[str, Any]:
    """What the UPDATE of a group of :func:`apply_many` writes (the same for the group)."""
    plan, _, steps = group
    last = steps[-1][0]
    values: dict[str, Any] = {
        "state": last.to_state.value,
        "paused_from": last.paused_from.value if last.paused_from else None,
        "version": Add(len(steps)),
        "updated_at": when,
    }
    for move, _ in steps:
        values.update(side_effects(move, when))
        if move.outcome is not None:
            values["outcome"] = move.outcome.value
    values.update(plan.changes or {})
    return values


def _written(
    conn: Connection, group: _Group, records: list[dict[str, Any]], *, actor: str, when: datetime
) -> Applied:
    """A plan's moves once written: their records collected, their side effects run."""
    plan, row, steps = group
    resources = (plan.changes or {}).get("resources", row.resources)
    reason = plan.reason  # the first move's
    attempt = row.attempt
    for move, before in steps:
        attempt = before.attempt + 1 if move.trigger is Trigger.CREATE else before.attempt
        records.append(
            make_record(plan.task_id, move, actor=actor, reason=reason, attempt=attempt, when=when)
        )
        reason = plan.then_reason
        effects.after_move(conn, plan.task_id, move, before, resources=resources, now=when)
    moves = tuple(move for move, _ in steps)
    return Applied(plan.task_id, moves, row.version + len(steps), attempt)
