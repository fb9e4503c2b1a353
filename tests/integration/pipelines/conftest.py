"""Fixtures: a manual clock and a registry on it."""

from __future__ import annotations

import pytest
from pipelines_world import T0

from mloop._clock import ManualClock
from mloop.config import Settings
from mloop.registry import Registry


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + 86400)


@pytest.fixture
def registry(settings: Settings, clock: ManualClock) -> Registry:
    return Registry(settings, clock=clock)
