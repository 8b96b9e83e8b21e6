"""``taskconsole submit``: build a create body (DESIGN §4) from options, post it, maybe wait.

Only the options given go into the body, so the scheduler's defaults stay the defaults.
``--param k=v`` reads ``v`` as JSON when it parses (``seconds=2`` is a number,
``tags=["a"]`` a list) and as a plain string otherwise (``host=db-42``); it overrides the
same key of ``--params-file``. The scheduler validates the params against the plugin's
schema and names the bad field; the console checks only what it parses itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from taskconsole.client import ConsoleError
from taskconsole.exit_codes import ExitCode
from taskconsole.follow import finish, follow_task
from taskconsole.render import status_of
from taskconsole.session import Session, pass_session, poll_option, read_json_file


def parse_params(pairs: tuple[str, ...], params_file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if params_file is not None:
        loaded = read_json_file(params_file, "--params-file")
        if not isinstance(loaded, dict):
            raise ConsoleError("--params-file: must hold a JSON object", ExitCode.USAGE)
        params.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConsoleError(f"--param: {pair!r} is not KEY=VALUE", ExitCode.USAGE)
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def parse_start(text: str | None) -> str | None:
    """An aware ISO 8601 time; a naive one would mean different instants on different hosts."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConsoleError(
            f"--start-at: {text!r} is not an ISO 8601 time", ExitCode.USAGE
        ) from None
    if when.tzinfo is None:
        raise ConsoleError("--start-at: needs a time zone, e.g. a trailing Z", ExitCode.USAGE)
    return when.isoformat()


def create_body(
    params: dict[str, Any],
    *,
    name: str | None,
    priority: int | None,
    resources: tuple[str, ...],
    idempotency_key: str | None,
    start_at: str | None,
    deadline: float | None,
    max_retry: int | None,
) -> dict[str, Any]:
    info = {
        "task_name": name,
        "important_level": priority,
        "resources": list(resources) or None,
        "idempotency_key": idempotency_key,
    }
    process = {"start_time": start_at, "deadline_second": deadline, "max_retry": max_retry}
    return {
        "create_info": {k: v for k, v in info.items() if v is not None},
        "process_arg": {k: v for k, v in process.items() if v is not None},
        "params": params,
    }


@click.command()
@click.argument("task_type")
@click.option("-p", "--param", "pairs", multiple=True, metavar="KEY=VALUE", help="A param.")
@click.option("--params-file", type=click.Path(path_type=Path), help="Params as a JSON object.")
@click.option("--name", help="task_name, for finding the task again.")
@click.option("--priority", type=int, help="important_level, 0-9; higher runs first.")
@click.option("--resource", "resources", multiple=True, help="A resource to lock (repeatable).")
@click.option("--start-at", help="Not before this ISO 8601 time (with its zone).")
@click.option("--deadline", type=float, help="Seconds the task may take before it times out.")
@click.option("--max-retry", type=int, help="Retries after a failure.")
@click.option("--idempotency-key", help="Submitting the same key again returns the first task.")
@click.option("--wait", is_flag=True, help="Follow the task until it finishes; exit by outcome.")
@poll_option
@pass_session
def submit(
    session: Session,
    *,
    task_type: str,
    pairs: tuple[str, ...],
    params_file: Path | None,
    resources: tuple[str, ...],
    start_at: str | None,
    wait: bool,
    interval: float,
    **options: Any,
) -> None:
    """Create a task of TASK_TYPE."""
    params = parse_params(pairs, params_file)
    body = create_body(params, resources=resources, start_at=parse_start(start_at), **options)
    task = session.client.request("POST", f"/v1/task/{task_type}", json=body)
    if not wait:
        session.out.show(task, lambda t: f"task {t['task_id']} submitted: {status_of(t)}")
        return
    finish(session, follow_task(session, task, interval))
