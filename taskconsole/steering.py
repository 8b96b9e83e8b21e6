"""Commands that move a task: ``pause``, ``continue``, ``cancel``, ``rollback``, ``retry``,
``notify``; and ``revert``, which undoes a finished task by a new one.

The scheduler decides every move against its state table; a refused one exits with
``CONFLICT`` (4) and the API's description of why (the state the task is in).
"""

from __future__ import annotations

from typing import Any

import click

from taskconsole.render import status_of
from taskconsole.session import Session, parse_json, pass_session

reason_option = click.option("--reason", help="Why; kept in the transition record.")


def _done(session: Session, task: dict[str, Any], action: str) -> None:
    session.out.show(task, lambda t: f"task {t['task_id']} {action} accepted: now {status_of(t)}")


def _steer(action: str, help_text: str) -> click.Command:
    """One command per action: they differ only in the action they send."""

    @click.argument("task_id", type=click.IntRange(min=1))
    @reason_option
    @pass_session
    def command(session: Session, task_id: int, reason: str | None) -> None:
        _done(session, session.client.act(task_id, action, reason=reason), action)

    command.__doc__ = help_text
    return click.command(action)(command)


pause = _steer("pause", "Pause a task (a running plugin stops at its next checkpoint).")
continue_ = _steer("continue", "Continue a paused task from where it was paused.")
cancel = _steer("cancel", "Cancel a task: it finishes with outcome cancelled.")
rollback = _steer(
    "rollback",
    "Roll back a failed or paused task, or a topology's child waiting in success "
    "(a finished task is reverted instead).",
)
retry = _steer("retry", "Retry a failed task (while retries are left).")


@click.command()
@click.argument("task_id", type=click.IntRange(min=1))
@reason_option
@pass_session
def revert(session: Session, task_id: int, reason: str | None) -> None:
    """Undo a task that finished succeeded: a new task of its type runs its rollback."""
    made = session.client.act(task_id, "revert", reason=reason)
    session.out.show(
        made, lambda t: f"task {task_id} reverted by task {t['task_id']}: now {status_of(t)}"
    )


@click.command()
@click.argument("task_id", type=click.IntRange(min=1))
@click.option("--result", help="The result, as JSON.")
@click.option("--failed", is_flag=True, help="The external work failed.")
@click.option("--error", help="What went wrong (with --failed).")
@reason_option
@pass_session
def notify(
    session: Session,
    *,
    task_id: int,
    result: str | None,
    failed: bool,
    error: str | None,
    reason: str | None,
) -> None:
    """Report the end of an asynchronous task's external work."""
    body = {
        "success": not failed,
        "result": None if result is None else parse_json(result, "--result"),
        "error": error,
    }
    _done(session, session.client.act(task_id, "notify", body, reason=reason), "notify")
