"""The Kubernetes manifests: valid against the API schemas, and wired to each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from deploy_files import DEPLOY, dockerfile_stages, yaml_documents
from mloop.config import load_settings

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES = "1.30.0"  # the oldest release the manifests promise to work on


def _by_kind() -> dict[str, dict[str, Any]]:
    docs = [doc for path in MANIFESTS for doc in yaml_documents(path)]
    kinds = {doc["kind"]: doc for doc in docs}
    assert len(kinds) == len(docs), "one object of each kind"
    return kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: Path(p).name)
@pytest.mark.parametrize("version", [KUBERNETES, kubernetes_validate.latest_version()])
def test_every_manifest_is_valid_against_the_api_schema(path: Path, version: str) -> None:
    for doc in yaml_documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_misspelt_field_is_caught() -> None:
    deployment = _by_kind()["Deployment"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_service_pdb_and_hpa_point_at_the_deployments_pods() -> None:
    k = _by_kind()
    deployment = k["Deployment"]
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == pods
    assert k["Service"]["spec"]["selector"] == pods
    assert k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == pods
    target = k["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa_metrics = {m["type"]: m for m in k["HorizontalPodAutoscaler"]["spec"]["metrics"]}
    assert hpa_metrics["Pods"]["pods"]["metric"]["name"] == "mloop_queue_depth"
    assert k["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert k["PodDisruptionBudget"]["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_pods_are_ready_only_with_warm_models_and_run_as_the_images_user() -> None:
    k = _by_kind()
    uid = int(dockerfile_stages()[-1].all("USER")[-1].split(":")[0])
    serve = k["Deployment"]["spec"]["template"]["spec"]
    (container,) = serve["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = dockerfile_stages()[-1].env()
    assert ports["http"] == int(env["MLOOP_SERVING__PORT"])
    for pod in (serve, k["Job"]["spec"]["template"]["spec"]):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        mounts = {m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"]}
        assert {env["MLOOP_HOME"], "/tmp"} <= mounts  # the root filesystem is read-only


def test_the_job_runs_mloop_retrain_with_the_same_settings_as_the_servers() -> None:
    k = _by_kind()
    (job,) = k["Job"]["spec"]["template"]["spec"]["containers"]
    (serve,) = k["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert job["args"][0] == "retrain" and job["image"] == serve["image"]
    assert job["envFrom"] == serve["envFrom"]
    assert k["Job"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_configmap_and_secret_hold_valid_mloop_settings() -> None:
    k = _by_kind()
    env = {**k["ConfigMap"]["data"], **k["Secret"]["stringData"]}
    settings = load_settings(env=env, config_file=None)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.artifacts_url.startswith("s3://") and settings.redis_url
    assert settings.serving.max_connections_per_client == 0  # behind the Service's proxy
    assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
