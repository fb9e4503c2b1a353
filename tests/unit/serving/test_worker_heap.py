"""Serving workers freeze their start-up heap, so full collections stay short under load."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient

from mloop.server._process import _freeze_after_startup


def test_worker_freezes_the_heap_once_the_app_has_started() -> None:
    started: list[int] = []
    app = FastAPI()

    @app.get("/frozen")
    def frozen() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count()}

    _freeze_after_startup(app)
    try:
        with TestClient(app) as client:
            started.append(client.get("/frozen").json()["frozen"])
    finally:
        gc.unfreeze()
    assert started[0] > 1000  # libraries and the app itself, not just a handful
