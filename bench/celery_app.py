"""The Celery side of the comparison: one no-op task, broker and result backend from the
environment (``BENCH_CELERY_BROKER``, ``BENCH_CELERY_BACKEND``), as a Celery user would run
it: ``celery -A bench.celery_app worker --pool prefork --concurrency 2``."""

from __future__ import annotations

import os

from celery import Celery

app = Celery(
    "bench",
    broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/10"),
    backend=os.environ.get("BENCH_CELERY_BACKEND", "redis://127.0.0.1:6379/10"),
)
app.conf.update(worker_prefetch_multiplier=4, task_acks_late=False, result_expires=3600)


@app.task(name="noop")
def noop() -> dict[str, object]:
    return {}
