"""Defining plugins: checks at definition time, params validation, derived capabilities."""

from __future__ import annotations

import pytest

from taskworker import Task, TaskContext, task
from taskworker.errors import ParamsInvalid, PluginDefinitionError


class Resize(Task):
    """Resizes an image."""

    task_type = "resize"
    params_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def resources(self, params):
        return [f"file:{params['path']}"]

    def run(self, ctx: TaskContext):
        return {"done": ctx.params["path"]}

    def rollback(self, ctx: TaskContext) -> None:
        ctx.log("undone")


def test_supported_steps_are_those_the_plugin_overrides():
    assert Resize.steps() == {"run", "rollback"}
    assert Resize.describe() == {
        "params_schema": Resize.params_schema,
        "blocking": True,
        "privileged": False,
        "description": "Resizes an image.",
        "steps": ["rollback", "run"],
        "declares_resources": True,
        "undo": "rollback",
    }
    assert not Task.declares_resources()


def test_resources_are_a_function_of_params():
    assert Resize().resources({"path": "/a.png"}) == ["file:/a.png"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "params.path"),
        ({"path": 3}, "params.path"),
        ({"path": "x", "sizes": [1, 0]}, "params.sizes[1]"),
        ({"path": "x", "color": "red"}, "params"),
    ],
)
def test_bad_params_name_the_field(params, field):
    with pytest.raises(ParamsInvalid) as error:
        Resize.validate_params(params)
    assert error.value.field == field
    assert error.value.http_status == 400


def test_good_params_pass_unchanged():
    assert Resize.validate_params({"path": "x", "sizes": [2]}) == {"path": "x", "sizes": [2]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"task_type": "Bad-Name", "run": lambda s, c: None}, "task_type must match"),
        (
            {"task_type": "ok", "params_schema": {"type": "nonsense"}, "run": lambda s, c: None},
            "params_schema is invalid",
        ),
        ({"task_type": "ok2", "blocking": "yes", "run": lambda s, c: None}, "blocking"),
        ({"task_type": "ok3"}, "must implement run"),
    ],
)
def test_a_bad_plugin_fails_when_its_class_is_defined(body, problem):
    with pytest.raises(PluginDefinitionError, match=problem):
        type("Broken", (Task,), body)


def test_undo_is_declared_or_derived_from_the_steps():
    class Probe(Task):
        task_type = "probe"
        undo = "nothing"

        def run(self, ctx):
            return None

    assert (Resize.undo_kind(), Probe.undo_kind()) == ("rollback", "nothing")
    assert Probe.describe()["undo"] == "nothing"
    with_run = {"task_type": "plain", "run": lambda s, c: None}
    assert type("Plain", (Task,), with_run).undo_kind() == "impossible"


@pytest.mark.parametrize(
    ("undo", "rollback", "problem"),
    [
        ("sometimes", False, "undo must be one of 'rollback', 'nothing', 'impossible'"),
        ("rollback", False, "undo is 'rollback' but the plugin does not implement rollback"),
        ("nothing", True, "undo is 'nothing' but the plugin implements rollback"),
    ],
)
def test_an_undo_that_disagrees_with_the_steps_fails_when_the_class_is_defined(
    undo, rollback, problem
):
    body = {"task_type": "odd", "undo": undo, "run": lambda s, c: None}
    if rollback:
        body["rollback"] = lambda s, c: None
    with pytest.raises(PluginDefinitionError, match=problem):
        type("Odd", (Task,), body)


def test_a_class_without_task_type_is_an_abstract_base():
    class MysqlBase(Task):
        def run(self, ctx):
            return None

    class CreateDb(MysqlBase):
        task_type = "create_db"

    assert MysqlBase.task_type is None
    assert CreateDb.steps() == {"run"}


def test_the_decorator_derives_a_schema_from_the_signature():
    @task
    def add(x: int, y: int = 1) -> dict:
        """Adds numbers."""
        return {"sum": x + y}

    cls = add.task_class
    assert cls.task_type == "add"
    assert cls.params_schema["required"] == ["x"]
    assert cls.params_schema["properties"] == {"x": {"type": "integer"}, "y": {"type": "integer"}}
    assert add(2, 3) == {"sum": 5}, "the decorated function stays callable"
    with pytest.raises(ParamsInvalid, match=r"params\.x"):
        cls.validate_params({"x": "two"})


def test_the_decorator_passes_the_context_and_takes_options():
    @task(task_type="copy_file", blocking=False, resources=lambda p: [f"file:{p['dst']}"])
    def copy(ctx: TaskContext, src: str, dst: str) -> dict:
        ctx.log(f"{src} -> {dst}")
        return {"copied": dst}

    cls = copy.task_class
    assert (cls.task_type, cls.blocking) == ("copy_file", False)
    assert cls().resources({"src": "a", "dst": "b"}) == ["file:b"]
    from taskworker.testing import TaskEnvironment

    env = TaskEnvironment(cls, {"src": "a", "dst": "b"})
    assert env.run_step() == {"copied": "b"}
    assert env.recorded.logs == [("info", "a -> b")]
