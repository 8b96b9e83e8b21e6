"""Fan-out: one task over many targets, by strategy (DESIGN §2).

The parent's children are one per target; this module decides, from the children's
statuses alone, which targets start next and how the parent ends. Keeping it a pure function
of the statuses means any node can take the decision after a crash, from the database.

- ``serial_blocking``: one target at a time; the first failure stops the rest (cancelled).
- ``serial_nonblocking``: one target at a time; failures do not stop the others.
- ``parallel``: up to ``max_parallel`` at a time (all when unset); failures do not stop others.

The parent succeeds only when every target succeeded; otherwise it fails once nothing is left
to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from taskworker.contract.api import Strategy
from taskworker.states import Outcome


class TargetStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Plan:
    """What to do now: targets to start, targets to cancel, and the parent's outcome if over."""

    start: list[int]
    cancel: list[int]
    outcome: Outcome | None


def plan(strategy: Strategy, statuses: Sequence[TargetStatus], max_parallel: int | None) -> Plan:
    pending = [i for i, s in enumerate(statuses) if s is TargetStatus.PENDING]
    running = sum(s is TargetStatus.RUNNING for s in statuses)
    failed = any(s in (TargetStatus.FAILED, TargetStatus.CANCELLED) for s in statuses)
    if strategy is Strategy.SERIAL_BLOCKING and failed:
        start, cancel = [], pending
    else:
        width = 1 if strategy is not Strategy.PARALLEL else (max_parallel or len(statuses))
        start, cancel = pending[: max(0, width - running)], []
    remaining = running + len(start)
    if remaining:
        return Plan(start, cancel, None)
    all_good = all(s is TargetStatus.SUCCEEDED for s in statuses)
    return Plan(start, cancel, Outcome.SUCCEEDED if all_good else Outcome.FAILED)
