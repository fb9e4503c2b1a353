"""Scorers for the evaluation gate: plain functions ``(case, output) -> score in [0, 1]``.

Built in: exact match, JSON-schema validity, regex, numeric tolerance, and an LLM
judge that asks a route of the gateway itself. Any importable function with the same
signature is a scorer too (``--scorer mypkg.scoring:my_scorer``); it may be async.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput
from mloop.gateway._schema import schema_errors

if TYPE_CHECKING:
    from mloop.gateway._gateway import Gateway

__all__ = [
    "Case",
    "Scorer",
    "exact_match",
    "json_schema_valid",
    "llm_judge",
    "load_cases",
    "numeric_tolerance",
    "regex_match",
    "scorer_from_spec",
]


@dataclass(frozen=True)
class Case:
    """One evaluation case: the input, and an expectation or a rubric (or both)."""

    input: str | list[dict[str, Any]]
    expected: Any = None
    rubric: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The input as chat messages."""
        if isinstance(self.input, str):
            return [{"role": "user", "content": self.input}]
        return [dict(m) for m in self.input]


Scorer = Callable[[Case, str], float | Awaitable[float]]


def load_cases(path: str | Path) -> list[Case]:
    """Cases from JSONL: ``{"input": ..., "expected": ..., "rubric": ...}`` per line."""
    cases = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"{path} line {number} is not JSON: {exc}.") from exc
        value = raw.get("input") if isinstance(raw, dict) else None
        if not isinstance(value, str | list):
            raise InvalidInput(
                f"{path} line {number} needs an 'input' (text or a list of messages), e.g. "
                '{"input": "2+2?", "expected": "4"}.'
            )
        rest = {k: v for k, v in raw.items() if k not in ("input", "expected", "rubric")}
        cases.append(Case(value, raw.get("expected"), raw.get("rubric"), rest))
    if not cases:
        raise InvalidInput(f"{path} has no cases.")
    return cases


def exact_match(case: Case, output: str) -> float:
    """1 when the output equals ``expected`` (surrounding whitespace ignored)."""
    return float(output.strip() == str(case.expected).strip())


def json_schema_valid(case: Case, output: str) -> float:
    """1 when the output is JSON valid against the case's ``schema`` (else just JSON)."""
    try:
        value = json.loads(output)
    except ValueError:
        return 0.0
    schema = case.extra.get("schema")
    return float(not schema_errors(value, schema)) if isinstance(schema, Mapping) else 1.0


def regex_match(case: Case, output: str) -> float:
    """1 when the case's ``expected`` pattern matches somewhere in the output."""
    return float(re.search(str(case.expected), output) is not None)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numeric_tolerance(tolerance: float = 1e-6, relative: bool = False) -> Scorer:
    """A scorer: 1 when the first number in the output is within ``tolerance`` of expected."""

    def score(case: Case, output: str) -> float:
        found = _NUMBER.search(output.replace(",", ""))
        if found is None:
            return 0.0
        got, want = float(found.group()), float(case.expected)
        allowed = tolerance * abs(want) if relative else tolerance
        return float(math.isfinite(got) and abs(got - want) <= allowed)

    return score


_JUDGE = (
    "You grade an answer against a rubric. Reply with one integer from 0 (fails the "
    "rubric) to 10 (fully meets it) and nothing else.\n\nRubric: {rubric}\n\n"
    "Question: {question}\n\nAnswer: {answer}"
)


def llm_judge(gateway: Gateway, route: str) -> Scorer:
    """A scorer that asks ``route`` of the gateway to grade 0-10 against the case's rubric."""

    async def score(case: Case, output: str) -> float:
        question = case.messages[-1].get("content", "")
        prompt = _JUDGE.format(
            rubric=case.rubric or f"matches: {case.expected}", question=question, answer=output
        )
        result = await gateway.chat(
            {
                "model": route,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": 0,
                "max_tokens": 5,
            },
            priority="batch",
        )
        text = str(result.response["choices"][0]["message"].get("content") or "")
        found = _NUMBER.search(text)
        return 0.0 if found is None else max(0.0, min(1.0, float(found.group()) / 10.0))

    return score


def scorer_from_spec(spec: str, gateway: Gateway | None = None) -> Scorer:
    """``exact``, ``json_schema``, ``regex``, ``numeric[:tol]``, ``judge:ROUTE`` or ``mod:func``."""
    name, _, arg = spec.partition(":")
    if name == "exact":
        return exact_match
    if name == "json_schema":
        return json_schema_valid
    if name == "regex":
        return regex_match
    if name == "numeric":
        return numeric_tolerance(float(arg) if arg else 1e-6)
    if name == "judge":
        if gateway is None or not arg:
            raise InvalidInput("judge needs a route of this gateway: --scorer judge:ROUTE.")
        return llm_judge(gateway, arg)
    if arg:
        try:
            found = getattr(importlib.import_module(name), arg)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"Cannot import scorer {spec!r}: {exc}.") from exc
        if callable(found):
            return found  # type: ignore[no-any-return]
    raise InvalidInput(
        f"Unknown scorer {spec!r}; use exact, json_schema, regex, numeric[:TOLERANCE], "
        "judge:ROUTE or module:function."
    )
