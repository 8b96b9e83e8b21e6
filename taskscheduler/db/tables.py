"""The tables as SQLAlchemy Core handles, named once for every module that reads or writes.

The hot paths use Core statements rather than the ORM (the ORM costs about 3x per
transition); these are the ``Table`` objects of :mod:`taskscheduler.db.models`, typed as such.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from taskscheduler.db.models import (
    Lease,
    LogOffset,
    Task,
    TaskEdge,
    TaskLog,
    TransitionRecord,
    TriggerDefinition,
    TriggerShard,
    WorkerNode,
)

TASKS = cast(Table, Task.__table__)
RECORDS = cast(Table, TransitionRecord.__table__)
LOGS = cast(Table, TaskLog.__table__)
EDGES = cast(Table, TaskEdge.__table__)
WORKERS = cast(Table, WorkerNode.__table__)
TRIGGERS = cast(Table, TriggerDefinition.__table__)
TRIGGER_SHARDS = cast(Table, TriggerShard.__table__)
LEASES = cast(Table, Lease.__table__)
OFFSETS = cast(Table, LogOffset.__table__)
