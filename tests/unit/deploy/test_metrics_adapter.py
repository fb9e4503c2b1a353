"""The metrics adapter's rules: valid, fed by the pods' scrape, and serving what the HPA reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from deploy_files import (
    DEPLOY,
    adapter_config,
    adapter_document,
    adapter_metrics,
    exposed_name,
    series_name,
    yaml_documents,
)

KUBERNETES = "1.30.0"
# The ServiceMonitor CRD's openAPIV3Schema (prometheus-operator v0.93, Apache-2.0),
# descriptions dropped, vendored from example/prometheus-operator-crd at commit 6adcebc.
SERVICEMONITOR_SCHEMA = Path(__file__).with_name("servicemonitor-schema.json")
# The fields prometheus-adapter's config file knows (pkg/config: MetricsDiscoveryConfig,
# DiscoveryRule): it ignores any other key, so a misspelt one would silently do nothing.
CONFIG_KEYS = {"rules", "resourceRules", "externalRules"}
RULE_KEYS = {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}
RESOURCE_KEYS = {"template", "overrides", "namespaced"}


def test_the_adapter_configmap_is_valid_against_the_api_schema() -> None:
    kubernetes_validate.validate(adapter_document("adapter-rules.yaml"), KUBERNETES, strict=True)


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused (the API server's strict field validation)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _validate_service_monitor(doc: dict[str, Any]) -> None:
    schema = _strict(json.loads(SERVICEMONITOR_SCHEMA.read_text()))
    jsonschema.Draft7Validator(schema).validate(doc)


def test_the_service_monitor_is_valid_against_its_crd_schema() -> None:
    monitor = adapter_document("servicemonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    )
    _validate_service_monitor(monitor)
    (endpoint,) = monitor["spec"]["endpoints"]
    broken = {
        **monitor,
        "spec": {**monitor["spec"], "endpoints": [{**endpoint, "bearerToken": "x"}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        _validate_service_monitor(broken)


def test_every_rule_uses_only_fields_the_adapter_knows() -> None:
    config = adapter_config()
    assert set(config) <= CONFIG_KEYS
    for rule in config["rules"]:
        assert set(rule) <= RULE_KEYS, set(rule) - RULE_KEYS
        assert {"seriesQuery", "resources", "metricsQuery"} <= set(rule)
        assert set(rule["resources"]) <= RESOURCE_KEYS
        assert set(rule.get("name", {})) <= {"matches", "as"}
        # The adapter fills these in: without them every pod would get the fleet's total.
        for placeholder in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
            assert placeholder in rule["metricsQuery"]


def test_the_hpa_reads_the_queue_depth_the_adapter_serves_per_pod() -> None:
    (hpa,) = yaml_documents(DEPLOY / "kubernetes" / "hpa.yaml")
    pods = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    served = adapter_metrics()
    assert pods and set(pods) <= set(served), (pods, served)
    assert served["mloop_queue_depth"] == "mloop_queue_depth"
    (rule,) = [
        r for r in adapter_config()["rules"] if series_name(r["seriesQuery"]) == "mloop_queue_depth"
    ]
    overrides = rule["resources"]["overrides"]
    assert overrides["pod"] == {"resource": "pod"}
    assert overrides["namespace"] == {"resource": "namespace"}


def test_the_pods_are_scraped_with_the_labels_the_rules_need() -> None:
    (service,) = yaml_documents(DEPLOY / "kubernetes" / "service.yaml")
    (deployment,) = yaml_documents(DEPLOY / "kubernetes" / "deployment.yaml")
    monitor = adapter_document("servicemonitor.yaml")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"  # /metrics needs an admin key
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {p["containerPort"] for p in container["ports"]}
    assert int(annotations["prometheus.io/port"]) in ports


@pytest.mark.parametrize(
    ("rule", "series", "served"),
    [
        ({"name": {"matches": "^(.*)_total$", "as": ""}}, "mloop_requests_total", "mloop_requests"),
        ({"name": {"matches": "^(.*)_total$", "as": "${1}_rate"}}, "a_total", "a_rate"),
        ({}, "mloop_queue_depth", "mloop_queue_depth"),
    ],
)
def test_the_naming_check_follows_the_adapters_rules(
    rule: dict[str, Any], series: str, served: str
) -> None:
    assert exposed_name(rule, series) == served
    assert series_name(f'{series}{{namespace!=""}}') == series
    assert series_name(f'{{__name__="{series}",pod!=""}}') == series
