"""``mloop gateway eval``: run cases through a candidate and the champion, gate, promote.

An arm is a prompt version on a route: the route's references to that prompt are
pinned to the version, and when the version was written for one deployment (its
lineage) the arm runs on that deployment alone. Both arms run through an in-process
gateway built from the same configuration, so quotas, fallbacks and templates apply
as in production (the response cache is off: an evaluation must reach the model).
The alias moves only when the gate passes; the move is audited with the gate's figures.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from mloop.errors import InvalidInput, MloopError, NotFound
from mloop.gateway._config import GatewayConfig, Route
from mloop.gateway._gate import GatePolicy, Verdict, gate_verdict
from mloop.gateway._gateway import Gateway
from mloop.gateway._prompts import PromptRegistry, PromptVersion, parse_ref
from mloop.gateway._scorers import Case, Scorer, scorer_from_spec

__all__ = ["EvalReport", "arm_route", "evaluate"]


@dataclass(frozen=True)
class EvalReport:
    """What an evaluation found and did."""

    candidate: str
    champion: str | None
    verdict: Verdict
    candidate_scores: tuple[float, ...]
    champion_scores: tuple[float, ...] | None
    alias: str | None
    moved_from: int | None
    promoted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "candidate": self.candidate,
            "champion": self.champion,
            "passed": self.verdict.passed,
            "reasons": list(self.verdict.reasons),
            "stats": self.verdict.stats,
            "alias": self.alias,
            "moved_from": self.moved_from,
            "promoted": self.promoted,
        }

    def explain(self) -> str:
        """The verdict and what happened to the alias, for a person."""
        lines = [
            f"candidate {self.candidate} vs champion {self.champion or '(none)'}",
            self.verdict.explain(),
        ]
        if self.alias is not None:
            if self.promoted:
                lines.append(f"alias {self.alias}: {self.moved_from} -> {self.candidate}")
            else:
                lines.append(f"alias {self.alias} left at {self.champion or '(unset)'}")
        return "\n".join(lines)


def arm_route(
    config: GatewayConfig, route: str, version: PromptVersion, deployment: str | None = None
) -> Route:
    """``route`` with its references to ``version``'s prompt pinned to ``version``."""
    base = config.route(route)
    templates = dict(base.templates)
    prompts = {}
    pinned = False
    for dep, ref in base.prompts.items():
        if parse_ref(ref)[0] == version.name:
            templates[dep] = version.template
            pinned = True
        else:
            prompts[dep] = ref
    target = deployment or version.deployment
    if target is not None and target not in config.deployments:
        raise InvalidInput(
            f"{version.ref} is written for deployment {target!r}, which this gateway does "
            f"not define ({sorted(config.deployments)})."
        )
    chain = (target,) if target is not None else base.chain
    if not pinned:  # the route does not name this prompt: it applies to every deployment
        templates.update({dep: version.template for dep in chain})
    elif target is not None and target not in templates:
        templates[target] = version.template
    return replace(
        base,
        name=f"{route}::{version.ref}",
        chain=chain,
        templates={d: t for d, t in templates.items() if d in chain},
        prompts={d: r for d, r in prompts.items() if d in chain},
    )


async def _score(
    gw: Gateway, route: str, cases: Sequence[Case], scorer: Scorer, concurrency: int
) -> list[float]:
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> float:
        async with gate:
            body = {"model": route, "messages": case.messages, "temperature": 0}
            body.update(dict(case.extra.get("params") or {}))
            try:
                result = await gw.chat(body, priority="batch")
                output = str(result.response["choices"][0]["message"].get("content") or "")
            except MloopError:
                output = ""  # a failed call scores as an empty answer, not as a crash
            score = scorer(case, output)
            if inspect.isawaitable(score):
                score = await score
            return float(score)

    return list(await asyncio.gather(*(one(c) for c in cases)))


def _champion(registry: PromptRegistry, name: str, selector: str | None) -> PromptVersion | None:
    if selector is None:
        return None
    try:
        return registry.lookup(selector if "@" in selector else f"{name}@{selector}")
    except NotFound:
        return None  # no champion yet: the first version is judged on its own


async def evaluate(
    config: GatewayConfig,
    registry: PromptRegistry,
    *,
    route: str,
    candidate: str,
    cases: Sequence[Case],
    scorer: str,
    policy: GatePolicy,
    champion: str | None = None,
    promote: str | None = None,
    deployment: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    env: Mapping[str, str] | None = None,
    concurrency: int = 8,
) -> EvalReport:
    """Score ``candidate`` (and the champion, default ``promote``'s version); move the alias."""
    cand = registry.lookup(candidate)
    champ = _champion(registry, cand.name, champion or promote)
    arms = {cand.ref: arm_route(config, route, cand, deployment)}
    if champ is not None:
        arms[champ.ref] = arm_route(config, route, champ)
    routes = {**config.routes, **{r.name: r for r in arms.values()}}
    gw = Gateway(
        replace(config, routes=routes, cache_backend=""),
        transport=transport,
        env=env,
        prompts=registry,
    )
    try:
        score = scorer_from_spec(scorer, gw)
        cand_scores = await _score(gw, arms[cand.ref].name, cases, score, concurrency)
        champ_scores = None
        if champ is not None:
            champ_scores = await _score(gw, arms[champ.ref].name, cases, score, concurrency)
    finally:
        await gw.aclose()
    verdict = gate_verdict(cand_scores, champ_scores, policy)
    moved_from, promoted = None, False
    if promote is not None and verdict.passed:
        if champ is not None and champ.version == cand.version:
            promoted = False  # already there
        else:
            why = json.dumps({"gate": verdict.stats, "cases": len(cases), "scorer": scorer})
            moved_from = registry.set_alias(
                cand.name, promote, cand.version, actor="eval-gate", why=why
            )
            promoted = True
    return EvalReport(
        candidate=cand.ref,
        champion=None if champ is None else champ.ref,
        verdict=verdict,
        candidate_scores=tuple(cand_scores),
        champion_scores=None if champ_scores is None else tuple(champ_scores),
        alias=promote,
        moved_from=moved_from,
        promoted=promoted,
    )
