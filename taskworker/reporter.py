"""Reports to the scheduler: queued by the steps, sent in batches by one background thread.

An HTTP round trip costs as much as the rest of a task's path (MEASURED.md), so a step never
waits for one: ``log``, ``progress``, ``heartbeat`` and ``notify`` only queue, and the thread
sends everything queued as one ``POST /v1/reports``. The scheduler answers item by item.

What is kept while the scheduler cannot be reached, and for how long:

* progress and heartbeats are *coalesced*: only the latest per task attempt is kept, so a
  chatty step cannot grow memory without bound while the scheduler is down;
* log lines and results (``notify``) are *never dropped* while the process lives; they are
  sent in the order they were made, after the coalesced reports (a progress report after
  the result would be refused, because the task has finished by then);
* an item the scheduler refuses for good (4xx: stale attempt, finished task, unknown task)
  is dropped with a warning, since repeating it cannot succeed; a 5xx item is kept.

Failed sends back off (doubling, up to :data:`MAX_BACKOFF_SECONDS`); :meth:`close` keeps
sending until everything is delivered or its time is up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

from taskworker.client import SignedClient
from taskworker.contract.worker import (
    HeartbeatReport,
    LogReport,
    NotifyReport,
    ProgressReport,
    Report,
    ReportBatch,
    ReportResults,
)
from taskworker.errors import TaskError

log = logging.getLogger(__name__)

#: Items per request; the scheduler accepts up to 1000.
MAX_BATCH = 500
#: How long reports wait to share a request with others made at nearly the same moment (a
#: step's last progress and its result); a result goes at once, since it is a step's last
#: report. Under load batches form anyway, from what queues while a request is in flight,
#: so waiting longer would only add to every task's latency.
LINGER_SECONDS = 0.0005
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 10.0
REPORTS_PATH = "/v1/reports"


class Reporter:
    def __init__(self, client: SignedClient) -> None:
        self._client = client
        self._cond = threading.Condition()
        #: (task_id, attempt, kind) → the latest progress or heartbeat
        self._latest: dict[tuple[int, int, str], Report] = {}
        #: logs and results, in the order they were made
        self._ordered: deque[Report] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.sent = 0

    # What steps call (thread-safe, never blocks on the network).

    def progress(
        self, task_type: str, task_id: int, attempt: int, percent: float, msg: str
    ) -> None:
        item = ProgressReport(
            task_type=task_type, task_id=task_id, attempt=attempt, percent=percent, message=msg
        )
        self._coalesce(item, "progress")

    def heartbeat(self, task_type: str, task_id: int, attempt: int) -> None:
        self._coalesce(
            HeartbeatReport(task_type=task_type, task_id=task_id, attempt=attempt), "heartbeat"
        )

    def log(self, task_type: str, task_id: int, attempt: int, level: str, message: str) -> None:
        line = LogReport(
            task_type=task_type,
            task_id=task_id,
            attempt=attempt,
            message=message[:65_536],
            level=level if level in ("debug", "info", "warning", "error") else "info",  # type: ignore[arg-type]
            at=datetime.now(UTC),
        )
        self._append(line)

    def notify(
        self,
        task_type: str,
        task_id: int,
        attempt: int,
        *,
        success: bool,
        result: Any,
        error: Any,
        step: Literal["run", "rollback"] = "run",
    ) -> None:
        self._append(
            NotifyReport(
                task_type=task_type,
                task_id=task_id,
                attempt=attempt,
                success=success,
                result=result,
                error=error,
                step=step,
            )
        )

    def _coalesce(self, item: Report, kind: str) -> None:
        with self._cond:
            self._latest[(item.task_id, item.attempt, kind)] = item
            self._cond.notify()

    def _append(self, item: Report) -> None:
        with self._cond:
            self._ordered.append(item)
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._latest) + len(self._ordered)

    # The sending side.

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)
        self._thread.start()

    def close(self, timeout: float) -> bool:
        """Stop after delivering what is queued, or after ``timeout``; True when all went."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        left = self.pending
        if left:
            log.error("stopping with %d report(s) the scheduler did not take", left)
        return left == 0

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._has_work())
                if not self._has_work():
                    return
                # a step's result is the last it reports: nothing is worth waiting for
                linger = not any(isinstance(item, NotifyReport) for item in self._ordered)
            if linger:
                time.sleep(LINGER_SECONDS)
            if self.send_once():
                backoff = FIRST_BACKOFF_SECONDS
                continue
            with self._cond:  # wake early only to stop; the scheduler needs time to recover
                self._cond.wait_for(lambda: self._stopping, timeout=backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _has_work(self) -> bool:
        return bool(self._latest or self._ordered)

    def send_once(self) -> bool:
        """Send one batch; False when it must be retried later (nothing was lost)."""
        batch = self._take()
        if not batch:
            return True
        try:
            reply = self._client.request("POST", REPORTS_PATH, body=ReportBatch(batch))
            results = reply.json(ReportResults).results
        except TaskError as exc:
            log.warning("reports not delivered (%d kept for retry): %s", len(batch), exc)
            self._give_back(batch)
            return False
        retry = []
        for item, outcome in zip(batch, results, strict=False):
            if outcome.status >= 500:
                retry.append(item)
            elif outcome.status >= 400:
                log.warning(
                    "the scheduler refused a %s report of task %d attempt %d: %s",
                    item.__struct_config__.tag,
                    item.task_id,
                    item.attempt,
                    outcome.description,
                )
        retry.extend(batch[len(results) :])
        self.sent += len(batch) - len(retry)
        if retry:
            self._give_back(retry)
        return not retry

    def _take(self) -> list[Report]:
        with self._cond:
            batch = list(self._latest.values())[:MAX_BATCH]
            for item in batch:
                kind = str(item.__struct_config__.tag)
                del self._latest[(item.task_id, item.attempt, kind)]
            while self._ordered and len(batch) < MAX_BATCH:
                batch.append(self._ordered.popleft())
            return batch

    def _give_back(self, batch: list[Report]) -> None:
        """Requeue in front of anything newer, without overwriting newer progress."""
        with self._cond:
            ordered = [i for i in batch if isinstance(i, (LogReport, NotifyReport))]
            self._ordered.extendleft(reversed(ordered))
            for item in batch:
                if not isinstance(item, (LogReport, NotifyReport)):
                    key = (item.task_id, item.attempt, str(item.__struct_config__.tag))
                    self._latest.setdefault(key, item)
