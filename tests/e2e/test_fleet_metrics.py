"""``mloop serve --workers 2``: ``/metrics`` counts every worker's traffic, and the
Grafana dashboard in ``deploy/grafana`` and the metrics adapter's rules in
``deploy/kubernetes/metrics-adapter`` ask only for metrics the server exports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from processes import free_port, wait_ready
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

from deploy_files import adapter_metrics
from mloop.config import load_settings
from mloop.registry import Registry

pytestmark = pytest.mark.slow

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "mloop-dashboard.json"
REQUESTS = 40
# Series Prometheus adds to every scrape itself, not the server.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


class Fleet:
    """A two-worker server that has answered ``REQUESTS`` predictions and one bad request."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = home

    def scrape(self) -> dict[str, float]:
        """``/metrics`` of whichever worker the kernel picks: sample name+labels -> value."""
        text = httpx.get(f"{self.url}/metrics", headers={"Connection": "close"}).text
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = sample.name + json.dumps(sample.labels, sort_keys=True)
                out[key] = out.get(key, 0.0) + sample.value
        return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("fleet") / "home"
    reg = Registry(load_settings(env={}, config_file=None, home=home))
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["a", "b", "c"])
    y = np.where(x["a"] > 0, "up", "down")
    reg.register(LogisticRegression().fit(x, y), "m", training_data=x, target=y, alias="production")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "PROMETHEUS_"))},
        "MLOOP_HOME": str(home),
        "MLOOP_SERVING__ACCESS_LOG": "false",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mloop.cli import run; run()",
            "serve",
            "m@production",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/v2/health/ready", proc, status=200, timeout=120)
        for i in range(REQUESTS):
            # A new connection each time, so the kernel spreads them over both workers.
            answer = httpx.post(
                f"{url}/models/m/predict",
                json={"records": [{"a": float(i % 7) - 3, "b": 0.5, "c": -0.5}]},
                headers={"Connection": "close"},
            )
            assert answer.status_code == 200, answer.text
        bad = httpx.post(f"{url}/models/m/predict", json={"records": [{"a": "x"}]})
        assert bad.status_code == 422
        yield Fleet(url, home)
    finally:
        proc.terminate()
        proc.wait(30)


def _requests_by_worker(home: Path) -> dict[str, float]:
    """Each worker's own count of answered predictions, read from its metrics file."""
    counts: dict[str, float] = {}
    for path in (home / "prometheus").glob("counter_*.db"):
        total = 0.0
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _family, sample, labels, _help = json.loads(key)
            if sample == "mloop_requests_total" and labels.get("status") == "200":
                total += value
        counts[path.stem] = total
    return counts


def test_every_scrape_counts_every_workers_requests(fleet: Fleet) -> None:
    per_worker = _requests_by_worker(fleet.home)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
    assert sum(per_worker.values()) == REQUESTS
    for _ in range(6):  # whichever worker answers the scrape, the total is the fleet's
        samples = fleet.scrape()
        total = sum(
            v
            for k, v in samples.items()
            if k.startswith("mloop_requests_total") and '"status": "200"' in k
        )
        assert total == REQUESTS
        latency = sum(
            v for k, v in samples.items() if k.startswith("mloop_request_latency_seconds_count")
        )
        assert latency == REQUESTS + 1  # every answer is timed, the 422 too
        resident = sum(v for k, v in samples.items() if k.startswith("mloop_pool_resident_models"))
        assert resident == 2  # one warm copy of m in each worker


_FUNCTIONS_AND_KEYWORDS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right|offset|bool|and|or|unless)\b"
)


def dashboard_metrics(dashboard: dict[str, object]) -> set[str]:
    """The metric names every PromQL query of a Grafana dashboard reads."""
    names: set[str] = set()
    for panel in dashboard["panels"]:  # type: ignore[attr-defined]
        for target in panel.get("targets", []):
            expr = target["expr"]
            expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
            expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
            expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
            expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping
            expr = _FUNCTIONS_AND_KEYWORDS.sub("", expr)
            for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
                rest = expr[match.end() :].lstrip()
                if not rest.startswith("(") and not re.fullmatch(r"e\d*", match.group()):
                    names.add(match.group())
    return names


def test_the_dashboard_queries_only_metrics_the_server_exports(fleet: Fleet) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    wanted = dashboard_metrics(dashboard)
    assert {"mloop_requests_total", "mloop_request_latency_seconds_bucket"} <= wanted
    exported = {key.split("{", 1)[0] for key in fleet.scrape()}
    assert wanted - exported - SCRAPE_SERIES == set(), f"exported: {sorted(exported)}"


def test_the_metrics_adapter_reads_only_metrics_the_server_exports(fleet: Fleet) -> None:
    sources = set(adapter_metrics().values())
    assert "mloop_queue_depth" in sources  # what the HPA scales on
    exported = {key.split("{", 1)[0] for key in fleet.scrape()}
    assert sources - exported == set(), f"exported: {sorted(exported)}"


def test_the_dashboard_check_sees_metric_names_not_functions_or_labels() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(nope_bucket{a="b"}[5m]))) / 1e-9 + on(x) b'
    assert dashboard_metrics({"panels": [{"targets": [{"expr": expr}]}]}) == {"nope_bucket", "b"}


def test_a_dead_workers_gauges_leave_the_sums_and_its_counts_stay(fleet: Fleet) -> None:
    """Runs last: it kills a worker of the module's server."""
    pids = sorted(
        int(p.stem.rsplit("_", 1)[1]) for p in (fleet.home / "prometheus").glob("counter_*.db")
    )
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "the dead worker's gauges stayed in the sums"
        try:
            samples = fleet.scrape()
        except httpx.TransportError:  # a connection queued at the killed worker is reset
            continue
        resident = sum(v for k, v in samples.items() if k.startswith("mloop_pool_resident_models"))
        if resident == 1:
            break
        time.sleep(0.2)
    total = sum(
        v
        for k, v in samples.items()
        if k.startswith("mloop_requests_total") and '"status": "200"' in k
    )
    assert total == REQUESTS  # a counter never goes back: the dead worker's answers count
