"""``mysql_backup_async``: the asynchronous shape — ``run`` starts the backup and returns.

The dump runs in a detached process (``python -m plugins.mysql.backup_async JOBFILE``) that
outlives the step and reports the result itself through ``notify`` with the task's token.
The worker holds no thread for it; until the notify arrives, the task stays ``running`` and
its deadline decides. The job file carries the token, so it is private to this user and the
job deletes it as soon as it has read it.

The job does not inherit the worker's environment (it holds the worker's secrets): it gets
a minimal one, and the credentials it needs, resolved by the worker, travel in the job
file with the token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from plugins.mysql.backup import Backup
from plugins.mysql.connection import resolve, variables
from taskworker import Task, TaskContext, TaskFailed
from taskworker.environment import minimal_environment
from taskworker.notify import notify


class BackupAsync(Task):
    """Starts a logical backup in a separate process that notifies when it is done."""

    task_type = "mysql_backup_async"
    blocking = False
    params_schema = Backup.params_schema

    def resources(self, params: dict[str, Any]) -> list[str]:
        return Backup().resources(params)

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        if not ctx.notify_url or not ctx.notify_token:
            raise TaskFailed(
                "no notify URL and token: this task must be dispatched by a "
                "scheduler with a worker secret",
                retryable=False,
            )
        creds = resolve(ctx.params["credentials"])
        handle, job = tempfile.mkstemp(prefix="backup-job-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(
                {
                    "task_id": ctx.task_id,
                    "attempt": ctx.attempt,
                    "params": ctx.params,
                    "notify_url": ctx.notify_url,
                    "notify_token": ctx.notify_token,
                    "credentials": {"user": creds.user, "password": creds.password},
                },
                out,
            )
        # Where the worker finds its packages, the job finds them too: not a secret.
        path = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
        process = subprocess.Popen(
            ["setsid", "--fork", sys.executable, "-m", "plugins.mysql.backup_async", job],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=minimal_environment(path),
        )
        process.wait()
        ctx.log(f"backup job started for {ctx.params['database']}; waiting for its notify")
        return {"started": True}

    def rollback(self, ctx: TaskContext) -> None:
        Backup().rollback(ctx)


class _StderrSink:
    def log(self, task_id: int, attempt: int, level: str, message: str) -> None:
        print(f"task {task_id} [{level}] {message}", file=sys.stderr)

    def progress(self, task_id: int, attempt: int, percent: float, message: str) -> None:
        return None

    def heartbeat(self, task_id: int, attempt: int) -> None:
        return None


def main(job_file: str) -> int:
    with open(job_file) as handle:
        job = json.load(handle)
    os.unlink(job_file)
    # The worker's resolution, under the names the plugin resolves: in this process alone
    # (the dump tool it starts gets a minimal environment and an option file).
    user_variable, password_variable = variables(job["params"]["credentials"])
    os.environ[user_variable] = job["credentials"]["user"]
    os.environ[password_variable] = job["credentials"]["password"]
    ctx = TaskContext(
        task_id=job["task_id"],
        task_type=BackupAsync.task_type,
        attempt=job["attempt"],
        params=job["params"],
        sink=_StderrSink(),
    )
    try:
        result = Backup().run(ctx)
    except Exception as exc:
        notify(job["notify_url"], job["notify_token"], success=False, error=str(exc))
        return 1
    notify(job["notify_url"], job["notify_token"], success=True, result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
