"""The Callback loop: the final task is POSTed to its ``callback_url`` once it finished.

Delivery happens after the ``finish`` commit, never inside it. The ``finish`` move sets the
task's ``callback_due_at`` (when it has a ``callback_url``), and the loop reads the due ones
by that column's index alone, however many tasks have finished. The task's log is the record
of each try: every try writes a line (``callback delivered: HTTP 200``, ``callback failed:
...``) and, in the same transaction, clears ``callback_due_at`` (delivered, abandoned) or
moves it to the next try, ``RETRY_SECONDS * 2**(tries - 1)`` after a failed one, up to
``MAX_TRIES`` tries. A receiver
that answers 2xx got it; any other answer or no answer is a failed try.

One node delivers at a time (the ``sweep:callbacks`` lease, held through the node's lock
backend and renewed every pass), so a receiver is called once per
try, not once per node. A node that dies between the call and its log line leaves the try
unrecorded, and the next sweep calls again: receivers get at-least-once delivery and should
key on ``task_id``.

The node calls only hosts it was told to trust (:mod:`taskscheduler.tasks.addresses`): the
create refused a ``callback_url`` outside ``TASK_CALLBACK_ALLOW``, and each try checks it
again, since settings change between the two; one no longer allowed is abandoned with a line
saying why, never sent. Redirects are not followed (a ``3xx`` is a failed try), so an allowed
host cannot send the call elsewhere. Every callback is signed with ``TASK_CALLBACK_SECRET``
as the worker contract signs its requests (:mod:`taskworker.signing`: ``X-Task-Signature``,
HMAC-SHA256 over the method, the request target, ``X-Task-Timestamp`` and the body's
SHA-256), so a receiver can tell the call is ours and refuse a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
import urllib3
from sqlalchemy import Engine, and_, func, select
from urllib3.util import parse_url

from taskscheduler.db.engine import reading
from taskscheduler.db.tables import LOGS, TASKS
from taskscheduler.locks import DatabaseLocks, Locks, Ownership
from taskscheduler.tasks.addresses import callback_refusal
from taskscheduler.tasks.logs import write_log
from taskscheduler.tasks.views import task_view
from taskscheduler.tasks.write import write_task
from taskworker import signing

log = logging.getLogger(__name__)
SWEEP_LEASE = "sweep:callbacks"
#: Tasks looked at per pass.
BATCH = 50
#: Wait after the first failed try; doubles with each further one.
RETRY_SECONDS = 1.0
#: Tries before the callback is abandoned (recorded in the task's log).
MAX_TRIES = 8
DELIVERED = "callback delivered"
FAILED = "callback failed"
ABANDONED = "callback abandoned"
#: How long the callback's receiver may take to answer.
CALLBACK_TIMEOUT_SECONDS = 10.0


class CallbackLoop:
    name = "callbacks"
    batch = 1  # any work done: look again at once

    def __init__(
        self,
        engine: Engine,
        *,
        node: str,
        lease_seconds: float = 10.0,
        locks: Locks | None = None,
        allow: Sequence[str] = (),
        secret: str | None = None,
    ) -> None:
        self.engine = engine
        self.node = node
        #: ``TASK_CALLBACK_ALLOW``'s host patterns, and the key that signs every callback.
        self.allow = tuple(allow)
        self.secret = secret
        self.sweep = Ownership(locks or DatabaseLocks(engine), SWEEP_LEASE, node, lease_seconds)
        self.http = urllib3.PoolManager()

    def tick(self, now: datetime) -> int:
        if not self.sweep.hold():
            return 0  # another node delivers
        t, g = TASKS.c, LOGS.c
        failures = and_(g.task_id == t.id, g.message.like(f"{FAILED}%"))
        tries = select(func.count()).where(failures).scalar_subquery()
        with reading(self.engine) as conn:
            due = conn.execute(
                select(TASKS, tries.label("tries"))
                .where(t.callback_due_at <= now)
                .order_by(t.callback_due_at)
                .limit(BATCH)
            ).all()
        for row in due:
            self._try(row, row.tries, now)
        return len(due)

    def _try(self, row: Any, failed: int, now: datetime) -> None:
        refusal = callback_refusal(row.callback_url, self.allow)
        if refusal is None and not self.secret:
            refusal = "no TASK_CALLBACK_SECRET to sign it with"
        if refusal is not None:
            line = f"{ABANDONED}, not sent: {refusal}"
        else:
            body = msgspec.json.encode(task_view(row))
            try:
                status = deliver(self.http, row.callback_url, body, self.secret or "")
                line = (
                    f"{DELIVERED}: HTTP {status}" if 200 <= status < 300 else f"{FAILED}: {status}"
                )
                if 300 <= status < 400:
                    line += " (redirects are not followed)"
            except (urllib3.exceptions.HTTPError, ValueError) as exc:  # a bad URL: a failed try
                line = f"{FAILED}: {exc}"
        if line.startswith(FAILED) and failed + 1 >= MAX_TRIES:
            line = f"{ABANDONED} after {MAX_TRIES} tries; last: {line}"
        level = "info" if line.startswith(DELIVERED) else "warning"
        # the next try after a failed one waits twice as long as the one before
        again = now + timedelta(seconds=RETRY_SECONDS * 2**failed)
        with self.engine.begin() as conn:
            write_log(conn, row.id, row.attempt, line, at=now, level=level)
            due = again if line.startswith(FAILED) else None
            write_task(conn, [row.id], {"callback_due_at": due})
        log.log(logging.INFO if level == "info" else logging.WARNING, "task %s %s", row.id, line)


def deliver(http: urllib3.PoolManager, url: str, task: bytes, secret: str) -> int:
    """POST the final task (JSON) to its ``callback_url``, signed with ``secret`` over the
    request target the receiver sees (path and query); the HTTP status, or raises
    :class:`urllib3.exceptions.HTTPError` when the receiver cannot be reached. One request:
    no retry here (the loop's tries are the retries) and no redirect followed."""
    target = parse_url(url).request_uri
    reply = http.request(
        "POST",
        url,
        body=task,
        headers={
            "Content-Type": "application/json",
            **signing.sign(secret, "POST", target, task),
        },
        timeout=urllib3.Timeout(total=CALLBACK_TIMEOUT_SECONDS),
        retries=False,
        redirect=False,
    )
    return int(reply.status)
