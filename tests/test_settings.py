"""Settings: environment over TOML over defaults, and each bad value named at start-up."""

from __future__ import annotations

import pytest

from taskscheduler.settings import load
from taskworker.config import SettingsError


def test_defaults_need_nothing_installed():
    settings = load()
    assert settings.db_url == "sqlite:///taskscheduler.db"
    assert settings.redis_url is None and not settings.uses_redis_queue


def test_environment_variables_set_values(monkeypatch):
    monkeypatch.setenv("TASK_DB_URL", "mysql+pymysql://u:p@db/tasks")
    monkeypatch.setenv("TASK_REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("TASK_LEASE_SECONDS", "4.5")
    settings = load()
    assert settings.db_url == "mysql+pymysql://u:p@db/tasks"
    assert settings.uses_redis_queue
    assert settings.lease_seconds == 4.5


def test_a_toml_file_sets_values_and_the_environment_wins(tmp_path, monkeypatch):
    config = tmp_path / "taskscheduler.toml"
    config.write_text('db_url = "sqlite:///from-file.db"\nlease_seconds = 7\n')
    monkeypatch.setenv("TASK_CONFIG", str(config))
    monkeypatch.setenv("TASK_LEASE_SECONDS", "3")
    settings = load()
    assert settings.db_url == "sqlite:///from-file.db"
    assert settings.lease_seconds == 3


def test_tokens_are_parsed_into_roles(monkeypatch):
    monkeypatch.setenv("TASK_API_TOKENS", "a1:admin, o1:operator,v1:viewer")
    assert load().tokens == {"a1": "admin", "o1": "operator", "v1": "viewer"}


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("TASK_DB_URL", "postgresql://x/y", "unsupported database"),
        ("TASK_DB_URL", "::not a url::", "not a database URL"),
        ("TASK_REDIS_URL", "http://cache", "redis://"),
        ("TASK_API_TOKENS", "abc:root", "token:role"),
        ("TASK_LEASE_SECONDS", "-1", "greater than 0"),
        ("TASK_QUEUE_BACKEND", "kafka", "database"),
    ],
)
def test_each_bad_setting_is_named_in_the_error(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load()
    assert str(error.value).startswith(f"{name}: ")
    assert says in str(error.value)


def test_a_missing_config_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("TASK_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match=r"^TASK_CONFIG: no such file"):
        load()


def test_a_redis_backend_without_a_redis_url_is_refused(monkeypatch):
    monkeypatch.setenv("TASK_QUEUE_BACKEND", "redis")
    with pytest.raises(SettingsError, match=r"^TASK_REDIS_URL: required"):
        load()
