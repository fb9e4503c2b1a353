"""The closed loop on the real server: only traffic and labels come from outside.

``write_project`` lays out a folder with an ``mloop.toml`` whose ``[[alerts]]`` and
``[[pipelines]]`` run the whole loop with time compressed by settings (windows of a
few seconds, a shadow and canary steps of a few seconds), and registers the
champion: a penguin classifier trained where no Chinstraps live. ``mloop serve`` in
that folder then does the rest by itself: the drift alert fires on Dream island
traffic, the pipeline retrains on the logged traffic joined with the labels sent to
``POST /feedback``, validates the rows, gates the challenger against the champion,
shadows it, canaries it and promotes it (or rolls it back).

``Traffic`` is the outside world: it posts penguins and, a moment later, their true
(or poisoned) labels. ``run_loop_demo`` tells the story; the end-to-end tests assert it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from mloop.demo.penguins import (
    FEATURES,
    MODEL,
    TARGET,
    fit_classifier,
    flip_labels,
    records,
    traffic,
)

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from mloop.registry import ModelVersion

__all__ = [
    "LoopSpeed",
    "Traffic",
    "loop_config",
    "register_champion",
    "run_loop_demo",
    "serve",
    "write_project",
]

MARKER = ".mloop-loop-demo"


@dataclass(frozen=True)
class LoopSpeed:
    """Seconds that stand for the hours of a real deployment."""

    window_s: float = 3.0  # alert windows
    shadow_s: float = 6.0
    canary_step_s: float = 5.0
    min_requests: int = 15  # per step, counted in requests (of ``Traffic.batch`` rows)
    min_labels: int = 20


def loop_config(
    *,
    speed: LoopSpeed = LoopSpeed(),
    pipeline: str = "mloop.demo.penguins:pipeline",
    gate: Mapping[str, Any] | None = None,
    strategy: str = "shadow-then-canary",
) -> str:
    """The ``mloop.toml`` of the loop: drift alert → retraining → shadow → canary."""
    gate = gate or {"min_improvement": 0.02, "require": {"accuracy": ">=0.9"}}
    gate_lines = "\n".join(
        f"{k} = {_toml(v)}" for k, v in gate.items() if not isinstance(v, Mapping)
    )
    require = gate.get("require", {})
    require_lines = "\n".join(f"{k} = {_toml(v)}" for k, v in require.items())
    return f"""\
# The closed loop with time compressed: seconds stand for hours.
[serving]
alias_poll_s = 0.5
access_log = false

[monitor]
compact_interval_s = 1.0

[[alerts]]
name = "{MODEL}-drift"
model = "{MODEL}"
metric = "drift_share"
op = ">="
threshold = 0.3
window = "{speed.window_s:g}s"
for = 2
cooldown = "1h"

[[pipelines]]
path = "{pipeline}"
window = "1h"

[pipelines.triggers]
cooldown = "1h"

[pipelines.gate]
{gate_lines}

[pipelines.gate.require]
{require_lines}

[pipelines.rollout]
strategy = "{strategy}"

[pipelines.rollout.shadow]
duration_s = {speed.shadow_s:g}
min_requests = {speed.min_requests}
guards = ["agreement>=0.5", "error_rate<0.05"]
interval_s = 1

[pipelines.rollout.canary]
steps = [25, 100]
step_duration_s = {speed.canary_step_s:g}
min_requests = {speed.min_requests}
min_labels = {speed.min_labels}
guards = ["error_rate<0.05", "accuracy_drop<0.1"]
interval_s = 1
"""


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def register_champion(home: Path) -> ModelVersion:
    """Train ``penguins`` on Biscoe and Torgersen only and make it production."""
    from mloop.config import load_settings
    from mloop.registry import Registry

    registry = Registry(load_settings(env={}, config_file=None, home=home))
    survey = traffic(600, dream_share=0.0, seed=1)
    train, reference = survey.iloc[:450], survey.iloc[450:].reset_index(drop=True)
    model = fit_classifier(train[FEATURES], train[TARGET])
    try:
        return registry.register(
            model,
            MODEL,
            training_data=train[FEATURES],
            target=train[TARGET].to_numpy(),
            reference_data=reference[FEATURES],
            reference_target=reference[TARGET].to_numpy(),
            alias="production",
            tags={"dataset": "palmerpenguins", "survey": "Biscoe+Torgersen"},
            description="Penguin species, trained where no Chinstraps live.",
        )
    finally:
        registry.store.dispose()


def write_project(folder: Path, config: str) -> Path:
    """A fresh loop project in ``folder`` (its own earlier runs are cleared); returns its home."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    home = folder / ".mloop"
    if home.exists():
        if not (folder / MARKER).exists():
            from mloop.errors import InvalidInput

            raise InvalidInput(
                f"{home} holds an mloop home the loop demo did not make; "
                "run the demo in an empty folder."
            )
        shutil.rmtree(home)
    (folder / MARKER).write_text("made by mloop demo --loop; its .mloop is cleared on re-runs\n")
    (folder / "mloop.toml").write_text(config)
    return home


@contextmanager
def serve(folder: Path, port: int, *, ready_timeout_s: float = 90.0) -> Iterator[str]:
    """``mloop serve`` in ``folder`` as a child process; yields its URL, stops it after."""
    env = {**os.environ, "MLOOP_HOME": str(folder / ".mloop"), "OMP_NUM_THREADS": "1"}
    env.pop("MLOOP_CONFIG", None)
    log = (folder / "server.log").open("w")  # a pipe nobody reads would fill and stall it
    process = subprocess.Popen(
        [sys.executable, "-m", "mloop", "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{url}/v2/health/ready", process, ready_timeout_s, folder / "server.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[Any], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mloop serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"mloop serve did not answer {url} within {timeout_s:g} s")


@dataclass
class Traffic:
    """Clients of the served model: requests now, their labels a moment later."""

    url: str
    batch: int = 5
    poison: float = 0.0  # share of labels sent wrong
    seed: int = 0
    answered: VersionRows = field(default_factory=lambda: VersionRows())
    _pending: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def send(self, frame: pd.DataFrame) -> float:
        """Post ``frame`` in small requests; queue its labels; return the accuracy served."""
        truth = frame[TARGET].reset_index(drop=True)
        if self.poison:
            self.seed += 1
            truth = flip_labels(truth, self.poison, seed=self.seed)
        right = 0
        for start in range(0, len(frame), self.batch):
            part = frame.iloc[start : start + self.batch]
            answer = self.http.post(f"/models/{MODEL}/predict", json={"records": records(part)})
            answer.raise_for_status()
            body = answer.json()
            self.answered.add(int(answer.headers.get("x-mloop-version", "0")), len(part))
            for row, (prediction, label) in enumerate(
                zip(body["predictions"], part[TARGET], strict=True)
            ):
                right += str(prediction["label"]) == str(label)
                self._pending.append(
                    {
                        "request_id": body["request_id"],
                        "row": row,
                        "label": str(truth.iloc[start + row]),
                    }
                )
        return right / max(len(frame), 1)

    def label(self) -> int:
        """Send the labels of what was answered so far (delayed ground truth)."""
        pending, self._pending = self._pending, []
        if pending:
            answer = self.http.post("/feedback", json=pending)
            if answer.status_code >= 300:
                raise RuntimeError(f"POST /feedback answered {answer.status_code}: {answer.text}")
        return len(pending)

    def second(self, *, dream_share: float, rows: int = 40) -> float:
        """About one second of traffic with its labels; returns the accuracy served."""
        started = time.monotonic()
        self.seed += 1
        accuracy = self.send(traffic(rows, dream_share=dream_share, seed=self.seed))
        self.label()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        return accuracy


class VersionRows(dict[int, int]):
    """Rows answered per model version."""

    def add(self, version: int, rows: int) -> None:
        """Count ``rows`` answered by ``version``."""
        self[version] = self.get(version, 0) + rows


def production_version(home: Path) -> int:
    """The version ``penguins@production`` points to now (0 when none)."""
    from mloop.config import load_settings
    from mloop.registry import Registry

    registry = Registry(load_settings(env={}, config_file=None, home=home))
    try:
        return int(registry.aliases(MODEL).get("production", 0))
    finally:
        registry.store.dispose()


class AuditFeed:
    """The loop project's registry, opened once: production now, and new audit lines."""

    def __init__(self, home: Path) -> None:
        from mloop.config import load_settings
        from mloop.registry import Registry

        self.registry = Registry(load_settings(env={}, config_file=None, home=home))
        self.seen = 0

    def production(self) -> int:
        """The version ``penguins@production`` points to now (0 when none)."""
        return int(self.registry.aliases(MODEL).get("production", 0))

    def new_lines(self) -> list[str]:
        """Audit entries written since the previous call, oldest first."""
        events = list(reversed(self.registry.history(MODEL, limit=500)))
        fresh, self.seen = events[self.seen :], len(events)
        return [f"{e['action']}: {_details(e['details'])}" for e in fresh]

    def close(self) -> None:
        """Close the registry's connections."""
        self.registry.store.dispose()


def _details(details: Mapping[str, Any]) -> str:
    keep = ("alias", "from", "to", "version", "strategy", "candidate", "reason", "run", "error")
    return ", ".join(f"{k}={str(details[k])[:70]}" for k in keep if k in details)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mloop_cli(folder: Path, *args: str) -> str:
    """Run ``mloop ARGS`` against the loop project; return its standard output."""
    env = {**os.environ, "MLOOP_HOME": str(folder / ".mloop")}
    done = subprocess.run(
        [sys.executable, "-m", "mloop", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mloop {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def drive(
    client: Traffic,
    *,
    dream_share: float,
    until: Callable[[], bool],
    timeout_s: float,
    every: Callable[[float], None] | None = None,
) -> bool:
    """Send a second of traffic at a time until ``until()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        accuracy = client.second(dream_share=dream_share)
        if every is not None:
            every(accuracy)
        if until():
            return True
    return False


def run_loop_demo(folder: Path, console: Console, *, port: int = 0) -> dict[str, Any]:
    """``mloop demo --loop``: the real server heals its model while the demo only sends traffic."""
    home = write_project(folder, loop_config())
    champion = register_champion(home)
    console.rule("[bold]mloop demo --loop: the closed loop on the real server")
    console.print(
        f"1. {champion.ref} is in production, trained on Biscoe and Torgersen (no Chinstraps)."
    )
    console.print(f"   {folder / 'mloop.toml'} declares a drift alert and a retraining pipeline.")
    with serve(folder, port or free_port()) as url:
        console.print(
            f"2. mloop serve is answering on {url}; the demo only sends traffic and labels."
        )
        client = Traffic(url)
        story = AuditFeed(home)
        try:
            for _ in range(4):
                accuracy = client.second(dream_share=0.0)
            console.print(f"   calm traffic: accuracy {accuracy:.2f}")
            console.print("3. Traffic drifts: half of it now comes from Dream island (Chinstraps).")

            seconds = 0

            def show(accuracy: float) -> None:
                nonlocal seconds
                seconds += 1
                for line in story.new_lines():
                    console.print(f"   [bold]{line}[/bold]")
                if seconds % 5 == 0:
                    served = ", ".join(f"v{v}: {n}" for v, n in sorted(client.answered.items()))
                    console.print(
                        f"   {seconds:>3} s: accuracy served {accuracy:.2f} (rows so far {served})"
                    )

            promoted = drive(
                client,
                dream_share=0.5,
                until=lambda: story.production() != champion.version,
                timeout_s=180,
                every=show,
            )
            for line in story.new_lines():
                console.print(f"   [bold]{line}[/bold]")
            production = story.production()
        finally:
            client.close()
            story.close()
        console.print(
            f"4. {MODEL}@production is now version {production}; "
            "the audit trail, the run and the rollout:"
            if promoted
            else "4. No challenger was promoted within three minutes."
        )
        console.print(mloop_cli(folder, "runs", "list"))
        console.print(mloop_cli(folder, "rollout", "history", MODEL))
    return {"promoted": promoted, "folder": str(folder)}
