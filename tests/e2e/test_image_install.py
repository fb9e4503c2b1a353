"""The image's Python layer, built outside Docker: the Dockerfile's own install command in
a plain venv, then its health check against ``mloop serve`` started from that venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import free_port

from deploy_files import ROOT, dockerfile_stages, exec_form

pytestmark = pytest.mark.slow
IMAGE_VENV = "/opt/mloop"


def _build_python_layer(tmp_path: Path) -> Path:
    """Run the build stage's COPY and RUN steps with ``/opt/mloop`` moved under tmp_path."""
    build = dockerfile_stages()[0]
    context = tmp_path / "build"
    context.mkdir()
    for args in build.all("COPY"):
        *sources, _dest = args.split()
        for source in sources:
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(ROOT / source, context / source)
    venv = tmp_path / "opt-mloop"
    # The image's `python` is the base interpreter, not this test's venv.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    (bin_dir / "python").symlink_to(base)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    for command in build.all("RUN"):
        done = subprocess.run(
            ["bash", "-ec", command.replace(IMAGE_VENV, str(venv))],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def test_the_images_install_step_builds_a_working_server(tmp_path: Path) -> None:
    venv = _build_python_layer(tmp_path)
    python = venv / "bin" / "python"
    # the scale-out extras are in, and mloop's bytecode was compiled at install
    imports = "import mloop.server, mloop.store, psycopg, redis, s3fs"
    subprocess.run([str(python), "-c", imports], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert list((site / "mloop" / "server" / "__pycache__").glob("*.pyc"))

    runtime = dockerfile_stages()[-1]
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "PROMETHEUS_"))},
        **runtime.env(),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MLOOP_HOME": str(tmp_path / "home"),
        "MLOOP_SERVING__PORT": str(port),
    }
    command = [str(venv / "bin" / exec_form(runtime.all("ENTRYPOINT")[-1])[0])]
    server = subprocess.Popen(
        command + exec_form(runtime.all("CMD")[-1]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    health = exec_form(runtime.all("HEALTHCHECK")[-1].split("CMD", 1)[1].strip())
    assert health[0] == "python"
    try:
        deadline = time.monotonic() + 120  # docker's --start-period, generously
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            check = subprocess.run(
                [str(python), *health[1:]], env=env, capture_output=True, timeout=30
            )
            if check.returncode == 0:
                break
            assert time.monotonic() < deadline, check.stderr
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(30)
