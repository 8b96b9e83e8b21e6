"""The basic plugins, run under a real context: real threads, real subprocesses."""

from __future__ import annotations

import os
import time

import pytest

from plugins.external import External
from plugins.fail import Fail
from plugins.noop import Noop
from plugins.shell import Shell
from plugins.sleep import Sleep
from taskworker import Cancelled, TaskFailed
from taskworker.errors import ParamsInvalid
from taskworker.testing import TaskEnvironment


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is as good as gone
        return stat.read().split()[2] != "Z"


def test_noop_succeeds_with_an_empty_result():
    assert TaskEnvironment(Noop).run_step() == {}


def test_noop_takes_no_params():
    with pytest.raises(ParamsInvalid):
        TaskEnvironment(Noop, {"x": 1})


def test_fail_always_fails_and_its_rollback_succeeds():
    env = TaskEnvironment(Fail, {"message": "boom"})
    with pytest.raises(TaskFailed, match="boom"):
        env.run_step()
    env.run_step("rollback")
    assert Fail.steps() >= {"run", "rollback"}


def test_external_is_asynchronous_and_returns_at_once():
    assert External.blocking is False
    assert TaskEnvironment(External, {"note": "backup 42"}).run_step() is None


def test_sleep_sleeps_and_reports_progress():
    env = TaskEnvironment(Sleep, {"seconds": 0.3})
    assert env.run_step()["slept"] >= 0.3
    assert env.recorded.progress[-1][0] == 100.0


def test_sleep_refuses_a_negative_duration_naming_the_field():
    with pytest.raises(ParamsInvalid) as error:
        TaskEnvironment(Sleep, {"seconds": -1})
    assert error.value.field == "params.seconds"


def test_sleep_pauses_at_a_checkpoint_and_continues():
    # Given a running sleep
    env = TaskEnvironment(Sleep, {"seconds": 0.6})
    env.start()
    env.wait_for(lambda r: len(r.progress) >= 1)
    # When it is paused, its progress stops advancing
    env.pause()
    time.sleep(0.2)
    frozen = len(env.recorded.progress)
    time.sleep(0.4)
    assert len(env.recorded.progress) == frozen
    assert env.running
    # Then after continue it finishes
    env.resume()
    assert env.join(timeout=5)["slept"] >= 0.6


def test_sleep_cancels_at_a_checkpoint_even_while_paused():
    env = TaskEnvironment(Sleep, {"seconds": 30})
    env.start()
    env.pause()
    time.sleep(0.2)
    env.cancel()
    with pytest.raises(Cancelled):
        env.join(timeout=2)


def test_shell_streams_output_to_the_log_and_returns_exit_code_and_tail(tmp_path):
    env = TaskEnvironment(
        Shell,
        {
            "argv": ["sh", "-c", 'echo one; echo two >&2; pwd; echo "$GREETING"'],
            "cwd": str(tmp_path),
            "env": {"GREETING": "hello"},
        },
    )
    result = env.run_step()
    assert result["exit_code"] == 0
    assert result["stdout_tail"].splitlines() == ["one", "two", str(tmp_path), "hello"]
    assert [m for _, m in env.recorded.logs][1:] == ["one", "two", str(tmp_path), "hello"]


def test_shell_never_interprets_arguments_through_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    result = TaskEnvironment(Shell, {"argv": ["echo", f"; touch {marker}", "$(id)"]}).run_step()
    assert result["stdout_tail"] == f"; touch {marker} $(id)\n"
    assert not marker.exists()


def test_shell_rollback_runs_rollback_argv_and_fails_without_one(tmp_path):
    undone = tmp_path / "undone"
    env = TaskEnvironment(Shell, {"argv": ["true"], "rollback_argv": ["touch", str(undone)]})
    env.run_step("rollback")
    assert undone.exists()
    with pytest.raises(TaskFailed, match="nothing can undo"):
        TaskEnvironment(Shell, {"argv": ["true"]}).run_step("rollback")


def test_shell_puts_a_fan_out_child_s_target_into_its_arguments():
    env = TaskEnvironment(Shell, {"argv": ["echo", "host={target}"]}, target="db-7")
    assert env.run_step()["stdout_tail"] == "host=db-7\n"


def test_shell_fails_the_task_on_a_non_zero_exit_code():
    with pytest.raises(TaskFailed, match="exit code 3") as failed:
        TaskEnvironment(Shell, {"argv": ["sh", "-c", "echo bad; exit 3"]}).run_step()
    assert failed.value.details == {"exit_code": 3, "stdout_tail": "bad\n"}


def test_shell_fails_a_command_that_cannot_start():
    with pytest.raises(TaskFailed, match="cannot start"):
        TaskEnvironment(Shell, {"argv": ["/no/such/binary"]}).run_step()


def test_shell_times_out_and_kills_the_process_group(tmp_path):
    pidfile = tmp_path / "pid"
    env = TaskEnvironment(
        Shell, {"argv": ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], "timeout": 0.5}
    )
    with pytest.raises(TaskFailed, match="timed out"):
        env.run_step()
    assert not pid_alive(int(pidfile.read_text()))


def test_cancel_kills_the_command_and_its_children(tmp_path):
    # Given a shell task whose command started a grandchild
    pidfile = tmp_path / "pid"
    env = TaskEnvironment(Shell, {"argv": ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"]})
    env.start()
    env.wait_for(lambda r: pidfile.exists() and pidfile.read_text().strip() != "")
    grandchild = int(pidfile.read_text())
    assert pid_alive(grandchild)
    # When it is cancelled
    env.cancel()
    with pytest.raises(Cancelled):
        env.join(timeout=10)
    # Then the whole process group is gone
    assert not pid_alive(grandchild)


def test_pausing_a_shell_task_stops_its_process_group(tmp_path):
    counter = tmp_path / "count"
    env = TaskEnvironment(
        Shell,
        {"argv": ["sh", "-c", f"for i in $(seq 1 40); do echo $i >> {counter}; sleep 0.05; done"]},
    )
    env.start()
    env.wait_for(lambda r: counter.exists())
    env.pause()
    time.sleep(0.3)
    frozen = counter.read_text()
    time.sleep(0.4)
    assert counter.read_text() == frozen, "a paused command makes no progress"
    env.resume()
    assert env.join(timeout=15)["exit_code"] == 0
    assert counter.read_text().split()[-1] == "40"
