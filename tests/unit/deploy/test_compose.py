"""The compose fleet: valid Compose, two replicas on PostgreSQL + Redis + S3, scraped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy_files import DEPLOY, ROOT
from mloop.config import load_settings

# The Compose Specification's JSON schema (Apache-2.0), vendored at commit 170098b.
SCHEMA = Path(__file__).with_name("compose-spec.json")
REPLICAS = ("replica-1", "replica-2")


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(_compose())


def test_a_misspelt_key_is_caught() -> None:
    doc = _compose()
    doc["services"]["redis"]["imagee"] = "redis"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(doc)


def test_the_fleet_has_its_services_and_the_replicas_build_the_image() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "minio", "prometheus", "grafana", *REPLICAS} <= set(services)
    for name in REPLICAS:
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        )
        env = services[name]["environment"]
        settings = load_settings(env=env, config_file=None)
        assert settings.database_url.startswith("postgresql+psycopg://")
        assert settings.redis_url.startswith("redis://redis:")
        assert settings.artifacts_url.startswith("s3://")
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert settings.serving.workers >= 1 and settings.serving.pool_memory_mb > 0
        # each replica keeps its own spool and artifact cache
        assert any(v.endswith(":/var/lib/mloop") for v in services[name]["volumes"])
    homes = {v for name in REPLICAS for v in services[name]["volumes"]}
    assert len(homes) == len(REPLICAS)


def test_mounted_config_files_exist_except_the_operators_key() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./") and not source.endswith("mloop-admin-key"):
                assert (DEPLOY / source).exists(), source
    assert "deploy/prometheus/mloop-admin-key" in (ROOT / ".gitignore").read_text()


def test_prometheus_scrapes_every_replica_and_grafana_reads_prometheus() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:8000" for name in REPLICAS}
    assert job["metrics_path"] == "/metrics"
    mounted = {v.split(":")[1] for v in _compose()["services"]["prometheus"]["volumes"]}
    assert job["authorization"]["credentials_file"] in mounted
    sources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    (source,) = sources["datasources"]
    dashboard = json.loads((DEPLOY / "grafana" / "mloop-dashboard.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {source["uid"]} and source["url"] == "http://prometheus:9090"
