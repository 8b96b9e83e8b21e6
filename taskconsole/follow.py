"""Following a task as it runs: ``watch``, ``submit --wait`` and ``logs -f``.

``watch`` and ``submit --wait`` ask for the task with ``wait=<interval>``: the API answers
the moment the task finishes, or after the interval with its progress to draw. ``logs -f``
polls with ``after=<next_after>`` so no line repeats or goes missing.
The exit code of a followed task is its outcome, so a script can chain on it; a task that
did not succeed is shown with its error and its last transition records, which say why.
"""

from __future__ import annotations

import time
from typing import Any

import click

from taskconsole.client import ConsoleError
from taskconsole.exit_codes import ExitCode
from taskconsole.render import failure, log_line, percent, status_of
from taskconsole.session import Session, pass_session, poll_option

#: The one terminal state (DESIGN §3), and the outcome that counts as success.
FINISHED = "finish"
SUCCEEDED = "succeeded"
#: The longest one request waits for the task, well within the client's answer timeout.
MAX_WAIT_SECONDS = 5.0


def follow_task(session: Session, task: dict[str, Any], interval: float) -> dict[str, Any]:
    """Poll until the task finishes, drawing its progress; the finished task."""
    task_id = task["task_id"]
    path = f"/v1/task/{task['task_type']}"
    with session.out.progress() as bar:
        line = bar.add_task(_label(task), total=100, message="")
        while True:
            message = (task.get("progress") or {}).get("message") or ""
            bar.update(line, completed=percent(task), description=_label(task), message=message)
            if task["task_status"] == FINISHED:
                return task
            # answered at once when the task finishes, else after the interval, to redraw
            task = session.client.get(path, task_id=task_id, wait=min(interval, MAX_WAIT_SECONDS))


def finish(session: Session, task: dict[str, Any]) -> None:
    """Report a finished task and exit with its outcome. One that did not succeed comes
    with its error and its records (with ``--json``, the task and its ``transitions``)."""
    if task.get("outcome") == SUCCEEDED:
        session.out.show(task, lambda t: f"task {t['task_id']} {status_of(t)}")
        return
    try:
        records = session.client.get(f"/v1/tasks/{task['task_id']}/transitions")
    except ConsoleError:  # the task's end is the answer: its exit code must not change
        records = []
    if session.out.as_json:
        session.out.json({**task, "transitions": records})
    else:
        session.out.console.print(f"task {task['task_id']} {status_of(task)}")
        session.out.console.print(failure(task, records))
    raise SystemExit(ExitCode.TASK_FAILED)


def _label(task: dict[str, Any]) -> str:
    return f"#{task['task_id']} {task['task_type']} {status_of(task)}"


@click.command()
@click.argument("task_id", type=click.IntRange(min=1))
@poll_option
@pass_session
def watch(session: Session, task_id: int, interval: float) -> None:
    """Show a live progress bar until the task finishes; exit 1 unless it succeeded."""
    task = follow_task(session, session.client.task(task_id), interval)
    finish(session, task)


@click.command()
@click.argument("task_id", type=click.IntRange(min=1))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until it finishes.")
@poll_option
@pass_session
def logs(session: Session, task_id: int, follow: bool, interval: float) -> None:
    """Print the task's log lines, oldest first (with --json, one JSON object a line)."""
    path = f"/v1/tasks/{task_id}/logs"
    after = 0
    while True:
        finished = follow and session.client.task(task_id)["task_status"] == FINISHED
        page = session.client.get(path, after=after)
        for item in page["items"]:
            if session.out.as_json:
                session.out.json(item, indent=None)
            else:
                session.out.console.out(log_line(item), highlight=False)
        after = page["next_after"]
        if page["items"]:
            continue
        # Lines written before the task finished are in by now: the last empty read ends it.
        if not follow or finished:
            return
        time.sleep(interval)
