"""POST /v1/reports: a worker's batch of reports, applied together, each judged alone."""

from __future__ import annotations

from sqlalchemy import text

from tests.taskscheduler.api.harness import Api, drive, snapshot


def running(api: Api) -> int:
    """A sleep task started on the fake worker w1 (attempt 1)."""
    task_id = api.create()["task_id"]
    drive(api.engine, task_id, "create", "prepare", "run", worker="http://127.0.0.1:9/w1")
    return task_id


def report(task_id: int, kind: str, attempt: int = 1, **fields: object) -> dict[str, object]:
    return {"kind": kind, "task_type": "sleep", "task_id": task_id, "attempt": attempt, **fields}


def test_a_batch_applies_each_report_and_answers_each_as_if_alone(api: Api):
    # Given two running tasks
    first, second = running(api), running(api)
    # When w1 reports progress and log lines for one, and the end of both
    batch = [
        report(first, "progress", percent=40, message="copying"),
        report(first, "log", message="line 1"),
        report(first, "log", message="line 2", level="warning"),
        report(first, "heartbeat"),
        report(first, "notify", success=True, result={"rows": 3}),
        report(second, "notify", success=False, error={"message": "disk full"}),
    ]
    result = api.signed("POST", "/v1/reports", json={"reports": batch})
    # Then every item was applied
    assert result.status_code == 200, result.text
    assert [r["status"] for r in result.json["results"]] == [200, 201, 201, 200, 200, 200]
    done = api.get(first)
    assert (done["task_status"], done["outcome"], done["result"]) == (
        "finish",
        "succeeded",
        {"rows": 3},
    )
    assert done["progress"] == {"percent": 40.0, "message": "copying"}
    logs = api.call("GET", f"/v1/tasks/{first}/logs", role="viewer").json["items"]
    assert [(line["level"], line["message"]) for line in logs] == [
        ("info", "line 1"),
        ("warning", "line 2"),
    ]
    failed = api.get(second)
    assert (failed["task_status"], failed["outcome"]) == ("finish", "failed")


def test_refused_items_change_nothing_while_the_others_are_applied(api: Api):
    # Given a running task whose attempt 1 is current, and a finished one
    task_id, finished = running(api), api.create()["task_id"]
    api.act(finished, "cancel")
    before = snapshot(api.engine)
    # When the batch holds a stale attempt, an unknown task, a report on a finished task and
    # one good progress report
    batch = [
        report(task_id, "notify", attempt=7, success=True),
        report(999_999, "progress", percent=1),
        report(finished, "heartbeat"),
        report(task_id, "progress", percent=60),
    ]
    result = api.signed("POST", "/v1/reports", json={"reports": batch})
    # Then each refusal has its own status, and only the good report changed anything
    assert [r["status"] for r in result.json["results"]] == [409, 404, 409, 200]
    assert api.get(task_id)["task_status"] == "running"
    assert api.get(task_id)["progress"]["percent"] == 60
    assert snapshot(api.engine)[1:] == before[1:]  # no record, log or worker row added


def test_when_the_database_fails_nothing_of_the_batch_is_committed_and_all_are_503(
    sqlite_api: Api,
):
    # Given a running task, and a database that will fail on the batch's log line
    task_id = running(sqlite_api)
    with sqlite_api.engine.begin() as conn:
        conn.execute(text("ALTER TABLE task_logs RENAME TO task_logs_away"))
    before = snapshot_without_logs(sqlite_api)
    # When a batch with a result before the log line arrives
    batch = [
        report(task_id, "notify", success=True),
        report(task_id, "log", message="after the end"),
    ]
    result = sqlite_api.signed("POST", "/v1/reports", json={"reports": batch})
    # Then both are answered 503, to be sent again, and the result was not committed
    assert [r["status"] for r in result.json["results"]] == [503, 503]
    assert snapshot_without_logs(sqlite_api) == before
    assert sqlite_api.get(task_id)["task_status"] == "running"


def snapshot_without_logs(api: Api) -> object:
    with api.engine.connect() as conn:
        tasks = conn.execute(text("SELECT * FROM tasks ORDER BY id")).all()
        records = conn.execute(text("SELECT COUNT(*) FROM task_transitions")).scalar_one()
    return [tuple(row) for row in tasks], records


def test_each_task_sees_its_reports_in_the_order_sent(api: Api):
    # Given two running tasks, each reported on twice in one batch
    first, second = running(api), running(api)
    batch = [
        report(first, "notify", success=True, result={"n": 1}),
        report(second, "progress", percent=10),
        report(first, "progress", percent=99),  # after its end: refused
        report(second, "notify", success=True, result={"n": 2}),
    ]
    result = api.signed("POST", "/v1/reports", json={"reports": batch})
    # Then the progress that came after the first task's end was refused, the rest applied
    assert [r["status"] for r in result.json["results"]] == [200, 200, 409, 200]
    assert api.get(first)["progress"]["percent"] != 99
    assert [api.get(t)["result"] for t in (first, second)] == [{"n": 1}, {"n": 2}]
    assert {api.get(t)["outcome"] for t in (first, second)} == {"succeeded"}


def test_a_rollback_end_before_its_rollback_is_recorded_is_503_and_taken_when_sent_again(api: Api):
    # Given a failed task (retries spent) that is being rolled back: the worker accepted the
    # command, whose record is not committed yet
    task_id = running(api)
    drive(api.engine, task_id, "fail")
    before = snapshot(api.engine)
    # When the worker's quick undo reports its end first
    end = report(task_id, "notify", success=True, step="rollback")
    early = api.signed("POST", "/v1/reports", json={"reports": [end]})
    # Then it is answered 503 (the worker keeps it and sends it again), and nothing changed
    assert early.status_code == 200, early.text
    assert early.json["results"][0]["status"] == 503
    assert snapshot(api.engine) == before
    # When the rollback is recorded and the end arrives again, the task finishes rolled back
    drive(api.engine, task_id, "rollback")
    again = api.signed("POST", "/v1/reports", json={"reports": [end]})
    assert again.json["results"][0]["status"] == 200
    done = api.get(task_id)
    assert (done["task_status"], done["outcome"]) == ("finish", "rolled_back")
