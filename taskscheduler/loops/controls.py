"""The ControlLoop: carries out what each touched control task's pass decides.

Control tasks touched since their last pass (:mod:`taskscheduler.control.kinds`) are read with
their children; :func:`taskscheduler.control.plan.decide` says what to do, and it is done:

* moves that may concern a worker (pause, continue, cancel, rollback of a child) go one by
  one through :func:`~taskscheduler.tasks.actions.act_on`, exactly as an operator's would:
  the worker is told first, then the move is written on the version the pass read;
* a child with nothing to undo ends ``rolled_back`` and one that cannot be undone
  ``rollback_failed``, without a rollback on its worker (a run paused there is cancelled);
* releases, the nested control tasks started, the children finished in ``success``, the
  control task's own moves and its progress are written in one transaction, children before
  the control task (the order every child's own transaction locks them in), and the touch is
  cleared in it only if nobody touched the control task since the pass read it.

Anything refused or unreachable (a child moved meanwhile, a worker down) leaves the control
task touched a little later, so a later pass, on this node or another, tries again. Several
nodes may run this loop: every write is conditional, so two passes over one control task
cannot both move anything.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, select

from taskscheduler.control import plan as control_plan
from taskscheduler.control.kinds import CONTROL_KINDS, FANOUT
from taskscheduler.control.plan import Child, Control, Plan
from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import EDGES, TASKS
from taskscheduler.tasks.actions import WorkerCommands, act_on
from taskscheduler.tasks.bulk import Planned, apply_many
from taskscheduler.tasks.control_tasks import (
    clear_touch,
    release_children,
    start_control,
    write_progress,
)
from taskscheduler.tasks.guard import ROW_BY_ID
from taskscheduler.tasks.read import on_worker
from taskscheduler.tasks.transitions import apply_trigger
from taskscheduler.tasks.views import task_view
from taskscheduler.workers.registry import Registry
from taskworker.contract.api import Action, Strategy
from taskworker.contract.worker import Undo
from taskworker.errors import ConcurrentUpdate, NotFound, TaskError, TransitionRefused
from taskworker.states import Outcome, State, Trigger

log = logging.getLogger(__name__)
_c = TASKS.c
#: Control tasks handled per tick.
BATCH = 50
#: The control tasks whose time has come (built once: the loop runs it several times a second).
_DUE = (
    select(_c.id)
    .where(_c.kind.in_(CONTROL_KINDS), _c.ready_at <= bindparam("now"))
    .order_by(_c.ready_at)
    .limit(BATCH)
)
#: How soon a pass that could not do everything is tried again.
RETRY_SECONDS = 1.0
#: The pass's child moves that go through :func:`act_on`, with the action each one is.
ACTIONS = (
    ("cancel", Action.CANCEL),
    ("pause", Action.PAUSE),
    ("resume", Action.CONTINUE),
    ("rollback", Action.ROLLBACK),
)


def pause_reason(control_id: int) -> str:
    """The reason on a child's pause record that says its control task paused it."""
    return f"control task {control_id} paused"


class ControlLoop:
    name = "controls"
    batch = 1  # any work done: look again at once

    def __init__(
        self, engine: Engine, commands: WorkerCommands, registry: Registry, *, node: str
    ) -> None:
        self.engine = engine
        self.commands = commands
        self.registry = registry
        self.actor = f"controls:{node}"

    def tick(self, now: datetime) -> int:
        with reading(self.engine) as conn:
            touched = conn.execute(_DUE, {"now": now}).all()
        return sum(self.advance(row.id) for row in touched)

    def advance(self, control_id: int) -> int:
        """One pass over a control task; how many moves it made."""
        with self.engine.connect() as conn:
            control = conn.execute(ROW_BY_ID, {"task_id": control_id}).first()
            if control is None or control.ready_at is None:
                return 0
            children = self._children(conn, control)
            conn.rollback()
        plan = control_plan.decide(
            Control(
                state=control.state,
                kind=control.kind,
                on_failure=control.on_failure,
                strategy=control.strategy,
                max_parallel=control.max_parallel,
                held=control.control_task_id is not None,
            ),
            [child for child, _ in children.values()],
        )
        rows = {child.id: row for child, row in children.values()}
        moved, complete = self._act(control, plan, rows)
        progress = control_plan.progress([child for child, _ in children.values()])
        try:
            with self.engine.begin() as conn:
                moved += self._write(
                    conn, control, plan, rows, complete=complete, progress=progress
                )
        except (ConcurrentUpdate, TransitionRefused):
            pass  # another pass (another node's, an operator) moved it first: look again
        return moved

    def _children(self, conn: Connection, control: Row[Any]) -> dict[int, tuple[Child, Row[Any]]]:
        rows = conn.execute(
            select(TASKS).where(_c.control_task_id == control.id).order_by(_c.id)
        ).all()
        ids = [row.id for row in rows]
        saga = control.state == State.ROLLBACK  # only a saga asks what undoing means
        parents: dict[int, list[int]] = {i: [] for i in ids}
        if control.kind == FANOUT:
            if control.strategy != Strategy.PARALLEL:  # a serial fan-out undoes in reverse
                for before, after in itertools.pairwise(ids):
                    parents[after].append(before)
        elif ids:
            for edge in conn.execute(select(EDGES).where(EDGES.c.task_id.in_(ids))):
                parents[edge.task_id].append(edge.depends_on_id)
        return {
            row.id: (
                Child(
                    id=row.id,
                    state=row.state,
                    outcome=row.outcome,
                    released=row.state != State.INIT or row.ready_at is not None,
                    parents=tuple(parents[row.id]),
                    paused_by_control=row.state == State.PAUSE and row.paused_by_control,
                    paused_from=row.paused_from,
                    undo=self._undo(row) if saga else Undo.ROLLBACK,
                ),
                row,
            )
            for row in rows
        }

    def _act(self, control: Row[Any], plan: Plan, rows: dict[int, Row[Any]]) -> tuple[int, bool]:
        """The child moves that may need a worker; how many were made, and whether all."""
        moved, complete = 0, True
        reasons = {
            "cancel": f"control task {control.id} is over"
            if control.state == State.FINISH
            else f"control task {control.id} stopped",
            "pause": pause_reason(control.id),
            "resume": f"control task {control.id} continued",
            "rollback": f"control task {control.id} rolls back",
        }
        for name, action in ACTIONS:
            for child_id in getattr(plan, name):
                row = rows[child_id]
                try:
                    act_on(
                        self.engine,
                        self.commands,
                        row,
                        action,
                        actor=self.actor,
                        reason=reasons[name],
                        # stored, so that this control task's continue resumes it
                        changes={"paused_by_control": True} if name == "pause" else None,
                    )
                    moved += 1
                except NotFound as exc:
                    if action is not Action.ROLLBACK:
                        raise
                    why = f"its worker no longer holds it: {exc}"
                    self._end_rollback(row, Outcome.ROLLBACK_FAILED, why)
                    moved += 1
                except TaskError as exc:  # moved meanwhile, worker busy or down: later
                    log.info("control task %d: %s of task %d: %s", control.id, name, row.id, exc)
                    complete = False
        ends = [(i, Outcome.ROLLED_BACK, "has nothing to undo") for i in plan.undone]
        ends += [(i, Outcome.ROLLBACK_FAILED, "cannot roll back") for i in plan.rollback_failed]
        for child_id, outcome, why in ends:
            row = rows[child_id]
            try:
                if row.state == State.PAUSE and on_worker(row):  # its run stops, undone as is
                    with contextlib.suppress(NotFound):
                        self.commands.command(task_view(row), Action.CANCEL, reasons["rollback"])
                self._end_rollback(row, outcome, f"the {row.task_type} plugin {why}")
                moved += 1
            except TaskError as exc:  # moved meanwhile, worker busy or down: later
                log.info("control task %d: undo of task %d: %s", control.id, row.id, exc)
                complete = False
        return moved, complete

    def _undo(self, row: Row[Any]) -> Undo:
        """What undoing the child ``row`` shows means: a nested control task runs a saga
        of its own; a type no worker serves now is asked of its own worker all the same."""
        if row.kind in CONTROL_KINDS:
            return Undo.ROLLBACK
        try:
            return self.registry.undo(row.task_type)
        except NotFound:
            return Undo.ROLLBACK

    def _end_rollback(self, row: Row[Any], outcome: Outcome, reason: str) -> None:
        """A child undone without its worker's rollback (nothing to undo: ``rolled_back``;
        impossible, or its worker gone: ``rollback_failed``) moves ``rollback`` then
        ``finish`` with ``outcome``, and the saga goes on."""
        plan = Planned(
            row.id,
            row.version,
            reason=reason,
            then=(Trigger.FINISH,),
            outcome=outcome,
            seen=row,
            then_reason=reason,
        )
        with self.engine.begin() as conn:
            done = apply_many(conn, Trigger.ROLLBACK, [plan], actor=self.actor)[row.id]
        if isinstance(done, TaskError):
            raise done

    def _write(
        self,
        conn: Connection,
        control: Row[Any],
        plan: Plan,
        rows: dict[int, Row[Any]],
        *,
        complete: bool,
        progress: tuple[float, str],
    ) -> int:
        moved = 0
        now = utcnow()
        simple = [i for i in plan.release if rows[i].kind not in CONTROL_KINDS]
        moved += release_children(conn, simple, now)
        for child_id in plan.release:
            if rows[child_id].kind in CONTROL_KINDS:
                start_control(conn, child_id, actor=self.actor, now=now)
                moved += 1
        if plan.finish:
            tree = [
                *plan.finish,
                *_succeeded_below(conn, [i for i in plan.finish if rows[i].kind in CONTROL_KINDS]),
            ]
            done = apply_many(
                conn,
                Trigger.FINISH,
                [
                    Planned(i, rows[i].version if i in rows else None, outcome=Outcome.SUCCEEDED)
                    for i in tree
                ],
                actor=self.actor,
                now=now,
            )
            finished = sum(not isinstance(result, TaskError) for result in done.values())
            complete &= finished == len(tree)
            moved += finished
        version = control.version
        for trigger, outcome in plan.moves:
            version = apply_trigger(
                conn,
                control.id,
                trigger,
                actor=self.actor,
                reason="its children's states",
                outcome=outcome,
                expect_version=version,
                now=now,
            ).version
            moved += 1
        again = None if complete else now + timedelta(seconds=RETRY_SECONDS)
        write_progress(conn, control.id, *progress)
        clear_touch(conn, control.id, seen=control.ready_at, again=again)
        return moved


def _succeeded_below(conn: Connection, controls: list[int]) -> list[int]:
    """The tasks waiting in ``success`` under these nested control tasks, at any depth."""
    found: list[int] = []
    while controls:
        rows = conn.execute(
            select(_c.id, _c.kind).where(
                _c.control_task_id.in_(controls), _c.state == State.SUCCESS
            )
        ).all()
        found += [row.id for row in rows]
        controls = [row.id for row in rows if row.kind in CONTROL_KINDS]
    return found
