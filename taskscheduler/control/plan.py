"""What a control task's pass decides, from its children's states alone (no I/O).

A topology and a fan-out differ only in which waiting children may start: a topology
starts those whose parents all succeeded (:func:`taskscheduler.control.dag.ready`), a fan-out
those its strategy allows (:func:`taskscheduler.control.fanout.plan`). Everything else is shared:

* while the control task runs, a failed child stops new starts (a topology cancels what
  waits; a fan-out as its strategy says) and, once nothing is active, the control task
  fails — then finishes ``failed``, or with ``on_failure=rollback`` enters ``rollback``;
* in ``rollback`` (the saga) the children that succeeded, or were paused mid-way, are undone
  children before parents: a child is undone only when nothing downstream of it still
  waits to be undone or is being undone. How, its type's undo says: ``rollback`` by its
  worker, ``nothing`` (it changed nothing) by ending ``rolled_back`` without its worker's
  plugin, ``impossible`` by ending ``rollback_failed``. The control task finishes
  ``rolled_back``, or ``rollback_failed`` if any child's undo failed;
* a paused control task pauses its active children, and on ``continue`` resumes the ones it
  paused (not those an operator paused one by one);
* a control task that ends finishes, in the same transaction, the children that wait in
  ``success`` (and theirs, when topologies nest), so the whole tree is over when it is; one
  cancelled by an operator has its unfinished children cancelled by its next pass.

Being a pure function of the stored states, any node can take the decision after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from taskscheduler.control import fanout
from taskscheduler.control.dag import descendants
from taskscheduler.control.fanout import TargetStatus
from taskscheduler.control.kinds import FANOUT
from taskworker.contract.api import Strategy
from taskworker.contract.worker import Undo
from taskworker.states import NOT_STARTED, PAUSABLE, Outcome, State, Trigger


class Status(StrEnum):
    WAITING = "waiting"  # not released yet
    ACTIVE = "active"  # released and not at an end
    SUCCEEDED = "succeeded"  # in success (held) or finished succeeded
    FAILED = "failed"  # finished otherwise


@dataclass(frozen=True)
class Child:
    id: int
    state: str
    outcome: str | None
    released: bool
    #: Ids of the children it waits for (a topology's edges; a serial fan-out's predecessor).
    parents: tuple[int, ...] = ()
    #: Paused by this control task's pause (so its ``continue`` resumes it).
    paused_by_control: bool = False
    paused_from: str | None = None
    #: What undoing it means (its type's, :class:`~taskworker.contract.worker.Undo`); a
    #: nested control task undoes by its own saga (``rollback``).
    undo: str = Undo.ROLLBACK

    @property
    def status(self) -> Status:
        if self.state == State.SUCCESS or (
            self.state == State.FINISH and self.outcome == Outcome.SUCCEEDED
        ):
            return Status.SUCCEEDED
        if self.state == State.FINISH:
            return Status.FAILED
        return Status.ACTIVE if self.released else Status.WAITING


@dataclass(frozen=True)
class Control:
    state: str
    kind: str
    on_failure: str | None = None
    strategy: str | None = None
    max_parallel: int | None = None
    #: Has a control task of its own (nested): it then waits in ``success`` as children do.
    held: bool = False


@dataclass
class Plan:
    release: list[int] = field(default_factory=list)
    cancel: list[int] = field(default_factory=list)
    pause: list[int] = field(default_factory=list)
    resume: list[int] = field(default_factory=list)
    rollback: list[int] = field(default_factory=list)
    #: Children with nothing to undo: they end ``rolled_back``, their plugin not called.
    undone: list[int] = field(default_factory=list)
    #: Children that cannot be undone: they end ``rollback_failed``.
    rollback_failed: list[int] = field(default_factory=list)
    #: Children waiting in ``success`` that finish (succeeded).
    finish: list[int] = field(default_factory=list)
    #: The control task's own moves, in order, with the outcome of a ``finish``.
    moves: list[tuple[Trigger, Outcome | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.release, self.cancel, self.pause, self.resume, self.rollback, self.finish)
        ) or bool(self.undone or self.rollback_failed or self.moves)


def decide(control: Control, children: Sequence[Child]) -> Plan:
    """The pass's plan for ``control`` (children in creation order)."""
    if control.state == State.RUNNING:
        return _running(control, children)
    if control.state == State.PAUSE:
        return Plan(
            pause=[c.id for c in children if c.status is Status.ACTIVE and c.state in PAUSABLE]
        )
    if control.state == State.ROLLBACK:
        return _rolling_back(children)
    if control.state == State.FINISH:
        return Plan(
            finish=[c.id for c in children if c.state == State.SUCCESS],
            cancel=[
                c.id
                for c in children
                if c.status in (Status.WAITING, Status.ACTIVE) and c.state != State.ROLLBACK
            ],
        )
    return Plan()  # init (not released yet), success (waits for its own control task)


#: How a finished child ended, as its control task's progress counts it.
_ENDED: dict[str, str] = {
    Outcome.SUCCEEDED: "succeeded",
    Outcome.FAILED: "failed",
    Outcome.TIMED_OUT: "timed out",
    Outcome.CANCELLED: "cancelled",
    Outcome.ROLLED_BACK: "rolled back",
    Outcome.ROLLBACK_FAILED: "rollback failed",
}
#: The progress message's counts, in this order.
_COUNTED = ("waiting", "active", "rolling back", *_ENDED.values())


def progress(children: Sequence[Child]) -> tuple[float, str]:
    """The control task's progress: the share of children that succeeded, and how many are
    in each condition — every outcome told apart, so that a rolled-back child is never
    counted as a failed one."""
    counts = dict.fromkeys(_COUNTED, 0)
    for child in children:
        counts[_condition(child)] += 1
    total = len(children) or 1
    message = ", ".join(f"{counts[c]} {c}" for c in _COUNTED if counts[c])
    return round(100 * counts["succeeded"] / total, 1), message


def _condition(child: Child) -> str:
    if child.state == State.FINISH:
        return _ENDED.get(child.outcome or "", "failed")
    if child.state == State.ROLLBACK:
        return "rolling back"
    return child.status.value


def _running(control: Control, children: Sequence[Child]) -> Plan:
    plan = Plan(resume=[c.id for c in children if c.state == State.PAUSE and c.paused_by_control])
    statuses = {c.id: c.status for c in children}
    if control.kind == FANOUT:
        targets = fanout.plan(
            Strategy(control.strategy or Strategy.SERIAL_BLOCKING),
            [_target_status(c) for c in children],
            control.max_parallel,
        )
        plan.release = [children[i].id for i in targets.start]
        plan.cancel = [children[i].id for i in targets.cancel]
        end = None if plan.cancel else targets.outcome  # decided once the cancels are in
    else:
        failed = Status.FAILED in statuses.values()
        waiting = [c for c in children if c.status is Status.WAITING]
        if failed:
            plan.cancel = [c.id for c in waiting]
        else:
            plan.release = [
                c.id for c in waiting if all(statuses[p] is Status.SUCCEEDED for p in c.parents)
            ]
        settled = Status.ACTIVE not in statuses.values() and not waiting
        end = (Outcome.FAILED if failed else Outcome.SUCCEEDED) if settled else None
    if end is Outcome.SUCCEEDED:
        plan.moves = [(Trigger.SUCCEED, None)]
        if not control.held:
            plan.moves.append((Trigger.FINISH, Outcome.SUCCEEDED))
    elif end is not None:
        last = (Trigger.ROLLBACK, None) if control.on_failure == "rollback" else None
        plan.moves = [(Trigger.FAIL, None), last or (Trigger.FINISH, Outcome.FAILED)]
    if plan.moves and plan.moves[-1][0] is Trigger.FINISH:
        # the whole tree ends with its control task: no child is left waiting in success
        plan.finish = [c.id for c in children if c.state == State.SUCCESS]
    return plan


def _target_status(child: Child) -> TargetStatus:
    status = child.status
    if status is Status.WAITING:
        return TargetStatus.PENDING
    if status is Status.ACTIVE:
        return TargetStatus.RUNNING
    if status is Status.SUCCEEDED:
        return TargetStatus.SUCCEEDED
    return TargetStatus.CANCELLED if child.outcome == Outcome.CANCELLED else TargetStatus.FAILED


def _rolling_back(children: Sequence[Child]) -> Plan:
    def started(child: Child) -> bool:
        return (child.paused_from if child.state == State.PAUSE else child.state) not in (
            NOT_STARTED
        )

    undo = {c.id for c in children if c.state == State.SUCCESS}
    undo |= {c.id for c in children if c.state == State.PAUSE and started(c)}
    busy = {c.id for c in children if c.state == State.ROLLBACK}
    plan = Plan(
        cancel=[
            c.id
            for c in children
            if c.status is Status.WAITING or (c.status is Status.ACTIVE and not started(c))
        ]
    )
    graph = {c.id: c.parents for c in children}
    due = [c for c in children if c.id in undo and not descendants(graph, [c.id]) & (undo | busy)]
    plan.rollback = [c.id for c in due if c.undo == Undo.ROLLBACK]
    plan.undone = [c.id for c in due if c.undo == Undo.NOTHING]
    plan.rollback_failed = [c.id for c in due if c.undo == Undo.IMPOSSIBLE]
    unsettled = [c for c in children if c.status is Status.ACTIVE and c.id not in plan.cancel]
    if not unsettled and not undo and not plan.cancel:
        failed = any(c.outcome == Outcome.ROLLBACK_FAILED for c in children)
        plan.moves = [(Trigger.FINISH, Outcome.ROLLBACK_FAILED if failed else Outcome.ROLLED_BACK)]
    return plan
