"""Async tests here run on asyncio through anyio's pytest plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Only asyncio: serving runs on uvloop/asyncio."""
    return "asyncio"
