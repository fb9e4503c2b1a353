"""The error taxonomy and settings loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import load_settings
from mloop.errors import (
    ConfigurationError,
    DeadlineExceeded,
    Forbidden,
    IntegrityError,
    InvalidInput,
    MloopError,
    NotFound,
    Overloaded,
    Unauthenticated,
)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidInput("x"), 422, "user_fixable"),
        (NotFound("x"), 404, "user_fixable"),
        (Unauthenticated("x"), 401, "user_fixable"),
        (Forbidden("x"), 403, "user_fixable"),
        (IntegrityError("x"), 500, "operator_fixable"),
        (Overloaded("x", retry_after=0.2), 429, "retryable"),
        (DeadlineExceeded("x"), 504, "retryable"),
    ],
)
def test_every_error_knows_its_status_and_who_must_act(
    error: MloopError, status: int, kind: str
) -> None:
    assert error.status_code == status
    body = error.to_dict(request_id="r1")["error"]
    assert body["type"] == kind and body["request_id"] == "r1" and body["message"] == "x"
    assert body["retryable"] is (kind == "retryable")


def test_retry_after_header_rounds_up_to_whole_seconds() -> None:
    assert Overloaded("busy", retry_after=0.2).headers() == {"Retry-After": "1"}
    assert Overloaded("busy", retry_after=2.5).headers() == {"Retry-After": "3"}


def test_violations_travel_in_the_body() -> None:
    err = InvalidInput("bad", violations=[{"row": 0, "field": "age"}])
    assert err.to_dict()["error"]["violations"] == [{"row": 0, "field": "age"}]


def test_settings_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "mloop.toml"
    cfg.write_text('home = "from-file"\n[serving]\nport = 9000\nmax_batch_size = 8\n')
    env = {"MLOOP_SERVING__PORT": "9100"}
    s = load_settings(env=env, config_file=cfg, home=tmp_path / "h")
    assert s.serving.port == 9100 and s.serving.max_batch_size == 8
    assert s.home == (tmp_path / "h").resolve()
    assert s.database_url == f"sqlite:///{s.home / 'mloop.db'}"
    assert s.artifacts_url.startswith("file://")


def test_bad_settings_are_operator_errors_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"serving\.port"):
        load_settings(env={"MLOOP_SERVING__PORT": "eighty"}, home=tmp_path)
    with pytest.raises(ConfigurationError, match="nope"):
        load_settings(env={"MLOOP_SERVING__NOPE": "1"}, home=tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(env={}, config_file=tmp_path / "missing.toml")
