"""The task state machine of DESIGN §3: one literal table, one shared ``transitions.Machine``.

The scheduler (the authority) and the worker (which refuses actions the table forbids) both
import this module, so the table exists exactly once.

Nothing is attached per task: ``Machine(model=None)`` is built once, and a trigger is fired
against a throw-away :class:`_Probe` that carries only what the guards read (state,
``paused_from``, retry counters). Attaching a model with ``add_model`` costs ~0.24 ms and
grows with every model kept; firing an event against a probe costs ~23 µs on the reference
machine (see ``bench/bench_states.py``).

The machine decides *whether* a move is allowed and *where* it goes; persisting it (state,
outcome and the transition record in one transaction) is the caller's job, because
``transitions`` cannot undo a state change when a later step fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from transitions import EventData, Machine, MachineError

from taskworker.errors import TransitionRefused

# transitions logs every fired event at INFO: at thousands of decisions a second, noise.
logging.getLogger("transitions").setLevel(logging.WARNING)


class State(StrEnum):
    NONE = "none"
    INIT = "init"
    CREATE = "create"
    PREPARE = "prepare"
    POSTPOSE = "postpose"
    RUNNING = "running"
    PAUSE = "pause"
    SUCCESS = "success"
    FAIL = "fail"
    ROLLBACK = "rollback"
    FINISH = "finish"


class Trigger(StrEnum):
    SUBMIT = "submit"
    CREATE = "create"
    PREPARE = "prepare"
    POSTPONE = "postpone"
    REQUEUE = "requeue"
    RUN = "run"
    PAUSE = "pause"
    CONTINUE = "continue"
    SUCCEED = "succeed"
    FAIL = "fail"
    RETRY = "retry"
    ROLLBACK = "rollback"
    FINISH = "finish"
    CANCEL = "cancel"


class Outcome(StrEnum):
    """How a task ended; set exactly when it reaches ``finish``."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


S = State
#: States a paused task may return to with ``continue`` (exactly the sources of ``pause``).
PAUSABLE: tuple[State, ...] = (S.INIT, S.CREATE, S.PREPARE, S.POSTPOSE, S.RUNNING)

#: DESIGN §3, row by row: trigger, sources, destination. ``continue`` is expanded below.
TABLE: tuple[tuple[Trigger, tuple[State, ...], State], ...] = (
    (Trigger.SUBMIT, (S.NONE,), S.INIT),
    (Trigger.CREATE, (S.INIT,), S.CREATE),
    (Trigger.PREPARE, (S.CREATE,), S.PREPARE),
    (Trigger.POSTPONE, (S.INIT, S.CREATE, S.PREPARE), S.POSTPOSE),
    (Trigger.REQUEUE, (S.POSTPOSE,), S.INIT),
    (Trigger.RUN, (S.PREPARE,), S.RUNNING),
    (Trigger.PAUSE, PAUSABLE, S.PAUSE),
    (Trigger.SUCCEED, (S.RUNNING,), S.SUCCESS),
    (Trigger.FAIL, (S.CREATE, S.PREPARE, S.RUNNING), S.FAIL),
    (Trigger.RETRY, (S.FAIL,), S.INIT),
    (Trigger.ROLLBACK, (S.FAIL, S.SUCCESS, S.PAUSE), S.ROLLBACK),
    (Trigger.FINISH, (S.SUCCESS, S.FAIL, S.ROLLBACK), S.FINISH),
    (Trigger.CANCEL, tuple(s for s in State if s is not S.FINISH), S.FINISH),
)

#: The outcome ``finish`` records when the caller names none, by the state finished from.
DEFAULT_FINISH_OUTCOME: Mapping[State, Outcome] = {
    S.SUCCESS: Outcome.SUCCEEDED,
    S.FAIL: Outcome.FAILED,
    S.ROLLBACK: Outcome.ROLLED_BACK,
}
#: Outcomes ``finish`` accepts from each state (a deadline turns ``fail`` into ``timed_out``).
ALLOWED_FINISH_OUTCOMES: Mapping[State, frozenset[Outcome]] = {
    S.SUCCESS: frozenset({Outcome.SUCCEEDED}),
    S.FAIL: frozenset({Outcome.FAILED, Outcome.TIMED_OUT}),
    S.ROLLBACK: frozenset({Outcome.ROLLED_BACK, Outcome.ROLLBACK_FAILED}),
}


def sources(trigger: Trigger) -> frozenset[State]:
    """The states ``trigger`` moves from, as the table says."""
    return frozenset(s for t, froms, _ in TABLE if t is trigger for s in froms)


# The sets of states the rest of the system asks about, each defined here, once, beside the
# table they are read from.

#: States in which a worker holds the task's attempt: created there and not yet ended, or
#: waiting in ``success`` for its control task (its worker is the one that can roll it
#: back). A paused task counts by the state it was paused from.
ON_WORKER: frozenset[State] = frozenset({S.CREATE, S.PREPARE, S.RUNNING, S.ROLLBACK, S.SUCCESS})
#: States of an attempt that holds a worker's slot (counted against capacity and type limits).
WORKING: frozenset[State] = frozenset({S.CREATE, S.PREPARE, S.RUNNING, S.ROLLBACK, S.PAUSE})
#: States in which a task works on nothing, so it holds no resource lock.
IDLE: frozenset[State] = frozenset({S.INIT, S.POSTPOSE, S.FINISH})
#: States in which ``change`` may set new params or process_arg: the task is not executing
#: and may still (re)start (a task paused on a worker is excluded by its ``paused_from``).
CHANGEABLE: frozenset[State] = frozenset({S.INIT, S.POSTPOSE, S.PAUSE, S.FAIL})
#: Released tasks that have not begun on a worker: cancelled directly when work stops.
NOT_STARTED: frozenset[State] = frozenset({S.INIT, S.POSTPOSE})
#: States a ``rollback`` moves from.
ROLLBACK_FROM: frozenset[State] = sources(Trigger.ROLLBACK)
#: A child's states after which its control task has something to decide.
DECISIVE: frozenset[State] = frozenset({S.SUCCESS, S.FINISH})
#: States in which a worker's step has ended: it holds no slot and waits only for commands
#: (``clean``, ``rollback``) or nothing at all.
ENDED: frozenset[State] = frozenset({S.SUCCESS, S.FAIL, S.FINISH})


def on_worker(state: str, paused_from: str | None, worker: str | None) -> bool:
    """Whether a worker holds the task now, so commands must reach it (paused ones too)."""
    current = paused_from if state == S.PAUSE else state
    return worker is not None and current in ON_WORKER


class _Probe:
    """The minimal model a shared-machine event runs against; lives for one decision."""

    __slots__ = ("max_retry", "paused_from", "retry_count", "state")

    def __init__(self, state: str, paused_from: str | None, retry_count: int, max_retry: int):
        self.state = state
        self.paused_from = paused_from
        self.retry_count = retry_count
        self.max_retry = max_retry


def _probe(event: EventData) -> _Probe:
    assert isinstance(event.model, _Probe)
    return event.model


def _retries_left(event: EventData) -> bool:
    probe = _probe(event)
    return probe.retry_count < probe.max_retry


def _paused_from(state: State) -> Callable[[EventData], bool]:
    def guard(event: EventData) -> bool:
        return _probe(event).paused_from == state

    return guard


def _machine_transitions() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for trigger, sources, dest in TABLE:
        row: dict[str, Any] = {"trigger": trigger.value, "source": [s.value for s in sources]}
        row["dest"] = dest.value
        if trigger is Trigger.RETRY:
            row["conditions"] = [_retries_left]
        rows.append(row)
    rows.extend(
        {
            "trigger": Trigger.CONTINUE.value,
            "source": S.PAUSE.value,
            "dest": target.value,
            "conditions": [_paused_from(target)],
        }
        for target in PAUSABLE
    )
    return rows


MACHINE = Machine(
    model=None,
    states=[s.value for s in State],
    transitions=_machine_transitions(),
    initial=S.NONE.value,
    auto_transitions=False,
    send_event=True,
)


@dataclass(frozen=True, slots=True)
class Move:
    """A decided transition: what to write, not yet written."""

    trigger: Trigger
    from_state: State
    to_state: State
    outcome: Outcome | None
    paused_from: State | None


def decide(
    state: str,
    trigger: str,
    *,
    paused_from: str | None = None,
    retry_count: int = 0,
    max_retry: int = 0,
    outcome: str | None = None,
    task_id: int | None = None,
) -> Move:
    """Return the move ``trigger`` makes from ``state``, or raise :class:`TransitionRefused`.

    ``outcome`` only matters for ``finish`` (defaulted from the source state) and is forced
    to ``cancelled`` by ``cancel``. ``paused_from`` of the result is what the row must keep:
    set on ``pause``, cleared on everything else.
    """
    try:
        trig = Trigger(trigger)
        source = State(state)
    except ValueError:
        raise TransitionRefused(task_id, state, trigger, "unknown state or trigger") from None
    event = MACHINE.events[trig.value]
    probe = _Probe(source.value, paused_from, retry_count, max_retry)
    try:
        moved = event.trigger(probe)
    except MachineError:
        raise TransitionRefused(task_id, source, trig) from None
    if not moved:
        why = (
            f"retry_count {retry_count} has reached max_retry {max_retry}"
            if trig is Trigger.RETRY
            else f"the task was not paused from a resumable state ({paused_from})"
        )
        raise TransitionRefused(task_id, source, trig, why)
    dest = State(probe.state)
    return Move(trig, source, dest, _outcome(trig, source, outcome, task_id), _keep(trig, source))


def _outcome(
    trig: Trigger, source: State, outcome: str | None, task_id: int | None
) -> Outcome | None:
    if trig is Trigger.CANCEL:
        return Outcome.CANCELLED
    if trig is not Trigger.FINISH:
        return None
    if outcome is None:
        return DEFAULT_FINISH_OUTCOME[source]
    try:
        chosen = Outcome(outcome)
    except ValueError:
        raise TransitionRefused(task_id, source, trig, f"unknown outcome {outcome!r}") from None
    if chosen not in ALLOWED_FINISH_OUTCOMES[source]:
        raise TransitionRefused(task_id, source, trig, f"outcome {chosen} is not allowed here")
    return chosen


def _keep(trig: Trigger, source: State) -> State | None:
    return source if trig is Trigger.PAUSE else None


def allowed_triggers(state: str) -> list[Trigger]:
    """Triggers the table allows from ``state`` (ignoring guards); used for 409 messages."""
    return [t for t in Trigger if state in MACHINE.events[t.value].transitions]
