"""The LogDumper loop: tasks from new matching log lines, each line once across restarts.

Files are local to a host, so each host's node reads its own: one node per host at a time,
through the ``logdumper:<host>`` lease (several nodes on one host share the files, nodes on
other hosts read theirs). Each pass, per rule, reads the new complete lines
(:func:`taskscheduler.logdumper.follower.follow`, across rotation and truncation), makes a
task of every matching line and, in one transaction, stores the tasks and the offsets after
the last line read. A crash before the commit leaves the offsets where they were, so the
next pass reads the same lines again and makes their tasks then; a crash after it has both.
Neither repeats nor skips a line.

A line whose task is refused (its params do not fit the plugin's schema, its type is
served by no worker) is skipped with a warning in the node's log — it would be refused on
every later pass too, and holding the offset back would stop the file.
"""

from __future__ import annotations

import itertools
import logging
import socket
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, insert, select, update

from taskscheduler.db.tables import OFFSETS, TASKS
from taskscheduler.locks import Locks, Ownership
from taskscheduler.logdumper.follower import Line, Position, follow
from taskscheduler.logdumper.rules import Rule
from taskscheduler.queue.wakeup import Wakeup
from taskscheduler.tasks.create import store
from taskscheduler.workers.registry import Registry
from taskworker.contract.api import CreateBody
from taskworker.errors import TaskError

log = logging.getLogger(__name__)
_o = OFFSETS.c
#: Lines read per rule and pass (the rest waits for the next pass, which comes at once).
MAX_LINES = 1000


class LogDumperLoop:
    name = "logdumper"
    batch = 1  # any work done: look again at once

    def __init__(
        self,
        engine: Engine,
        rules: list[Rule],
        locks: Locks,
        *,
        node: str,
        lease_seconds: float,
        registry: Registry | None = None,
        wakeup: Wakeup | None = None,
        host: str | None = None,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.registry = registry or Registry(engine)
        self.wakeup = wakeup or Wakeup(None)
        self.actor = f"logdumper:{node}"
        self.lease = Ownership(
            locks, f"logdumper:{host or socket.gethostname()}", node, lease_seconds
        )

    def tick(self, now: datetime) -> int:
        if not self.lease.hold():
            return 0
        read = made = 0
        for rule in self.rules:
            lines, tasks = self._pass(rule, now)
            read, made = read + lines, made + tasks
        if made:
            self.wakeup.notify()
        return read

    def _pass(self, rule: Rule, now: datetime) -> tuple[int, int]:
        """One rule's new lines: how many were read, how many tasks they made."""
        with self.engine.connect() as conn:
            stored = {
                row.path: Position(row.inode, row.offset, bytes.fromhex(row.tail))
                for row in conn.execute(select(OFFSETS).where(_o.rule == rule.name))
            }
        lines = list(itertools.islice(follow(rule.source, stored), MAX_LINES))
        if not lines:
            return 0, 0
        bodies = [body for line in lines if (body := self._task(rule, line, now)) is not None]
        with self.engine.begin() as conn:
            made = self._store(conn, bodies)
            reached = {line.path: line.position for line in lines}  # the last line's, per file
            for path, position in reached.items():
                self._save(conn, rule.name, path, position, now, known=path in stored)
        return len(lines), made

    def _task(self, rule: Rule, line: Line, now: datetime) -> tuple[str, CreateBody] | None:
        raw = rule.task_for(line.text, now)
        if raw is None:
            return None
        try:
            body = msgspec.convert(raw, CreateBody)
            task_type = body.create_info.task_type
            assert task_type is not None  # the rules file was checked at start
            self.registry.validate_params(
                task_type, self.registry.type_spec(task_type), body.params
            )
        except (msgspec.ValidationError, TaskError) as exc:
            log.warning("logdumper rule %s: %s: line skipped: %s", rule.name, exc, line.text[:200])
            return None
        return task_type, body

    def _store(self, conn: Connection, bodies: list[tuple[str, CreateBody]]) -> int:
        """Insert the tasks; those whose dedup key is taken (in the window) are dropped."""
        keys = {b.create_info.idempotency_key for _, b in bodies} - {None}
        taken = (
            set(
                conn.execute(
                    select(TASKS.c.idempotency_key).where(TASKS.c.idempotency_key.in_(keys))
                )
                .scalars()
                .all()
            )
            if keys
            else set()
        )
        made = 0
        for task_type, body in bodies:
            key = body.create_info.idempotency_key
            if key is not None:
                if key in taken:
                    continue
                taken.add(key)
            store(conn, task_type, body, self.actor)
            made += 1
        return made

    @staticmethod
    def _save(
        conn: Connection, rule: str, path: str, position: Position, now: datetime, *, known: bool
    ) -> None:
        values: dict[str, Any] = {
            "inode": position.inode,
            "offset": position.offset,
            "tail": position.tail.hex(),
            "updated_at": now,
        }
        if known:
            conn.execute(update(OFFSETS).where(_o.rule == rule, _o.path == path).values(values))
        else:
            conn.execute(insert(OFFSETS).values(rule=rule, path=path, **values))
