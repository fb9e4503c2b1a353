"""Reading the files in ``deploy/`` the way Docker, Compose and Kubernetes would."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
ADAPTER = DEPLOY / "kubernetes" / "metrics-adapter"


@dataclass
class Stage:
    """One ``FROM`` stage of a Dockerfile: its instructions as (keyword, argument text)."""

    base: str
    name: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction ``keyword`` in this stage."""
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        """Variables the stage's ``ENV`` instructions set (``KEY=value`` form)."""
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                out[key] = value
        return out


def dockerfile_stages(path: Path = DEPLOY / "Dockerfile") -> list[Stage]:
    """The stages of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 else ""))
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    """The argument list of an exec-form instruction (``["a", "b"]``)."""
    value = json.loads(args)
    assert isinstance(value, list), args
    return [str(v) for v in value]


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def adapter_document(path: str) -> dict[str, Any]:
    """The one object of a file in ``deploy/kubernetes/metrics-adapter``."""
    (doc,) = yaml_documents(ADAPTER / path)
    return doc


def adapter_config() -> dict[str, Any]:
    """The adapter's config file, as it reads it from the ConfigMap."""
    config = yaml.safe_load(adapter_document("adapter-rules.yaml")["data"]["config.yaml"])
    assert isinstance(config, dict)
    return config


def series_name(series_query: str) -> str:
    """The metric a rule's ``seriesQuery`` selects (``name{...}`` or ``{__name__="name"}``)."""
    match = re.fullmatch(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{.*\})?\s*", series_query)
    if match:
        return match.group(1)
    exact = re.search(r'__name__\s*=\s*"([^"]+)"', series_query)
    assert exact, f"the rule selects no single metric: {series_query}"
    return exact.group(1)


def exposed_name(rule: dict[str, Any], series: str) -> str:
    """The name the adapter serves ``series`` under (Go's regexp ``Expand`` of ``name.as``)."""
    naming = rule.get("name", {})
    pattern = re.compile(naming.get("matches", "") or ".*")
    match = pattern.search(series)
    assert match, f"{naming} does not match {series}"
    template = naming.get("as", "") or ("$1" if pattern.groups else "$0")
    return re.sub(r"\$\{?(\d+)\}?", lambda g: match.group(int(g.group(1))) or "", template)


def adapter_metrics() -> dict[str, str]:
    """Each metric the adapter serves -> the server's metric it is computed from."""
    return {
        exposed_name(rule, series_name(rule["seriesQuery"])): series_name(rule["seriesQuery"])
        for rule in adapter_config()["rules"]
    }
