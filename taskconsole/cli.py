"""The ``taskconsole`` command tree (DESIGN §6).

Every failure the console expects (the scheduler is down, refuses the token, does not know
the task, refuses a transition, rejects a field) is a :class:`ConsoleError`; the group prints
it as one line on stderr and exits with its code, so scripts see a meaning and people never
see a traceback. With ``--json`` it is also an object on stdout (``{"error": {"message",
"exit_code", "kind"}}``), so that stdout is JSON whatever happened.

Only ``taskconsole db`` imports the scheduler's code (and SQLAlchemy), inside its commands:
the others speak HTTP and start in a fraction of the time.
"""

from __future__ import annotations

from typing import Any

import click

from taskconsole import browse, definitions, follow, steering
from taskconsole.client import DEFAULT_TIMEOUT_SECONDS, ConsoleError
from taskconsole.db import db
from taskconsole.session import Session
from taskconsole.submit import submit

#: Where the scheduler listens unless ``--url`` or ``TASK_URL`` says otherwise.
DEFAULT_URL = "http://127.0.0.1:8080"


class ConsoleGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConsoleError as exc:
            session = ctx.find_object(Session)
            if session is not None and session.out.as_json:
                session.out.json({"error": error_object(exc)}, indent=None)
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.code)


def error_object(exc: ConsoleError) -> dict[str, Any]:
    """A failure as ``--json`` prints it: what happened, and the exit code that says it."""
    return {"message": exc.message, "exit_code": int(exc.code), "kind": exc.code.name.lower()}


@click.group(cls=ConsoleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="TASK_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="TASK_TOKEN", help="Bearer token (env TASK_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.version_option(package_name="taskscheduler")
@click.pass_context
def main(ctx: click.Context, url: str, token: str | None, as_json: bool, timeout: float) -> None:
    """Operate TaskScheduler: submit, watch and steer tasks; migrate the database."""
    ctx.obj = Session(ctx, url, token, timeout)
    ctx.obj.out.as_json = as_json


for command in (
    submit,
    browse.list_tasks,
    browse.show,
    browse.tree,
    browse.workers,
    browse.types,
    follow.watch,
    follow.logs,
    steering.pause,
    steering.continue_,
    steering.cancel,
    steering.rollback,
    steering.revert,
    steering.retry,
    steering.notify,
    definitions.topology,
    definitions.trigger,
    db,
):
    main.add_command(command)
