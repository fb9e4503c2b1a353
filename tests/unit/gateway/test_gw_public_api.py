"""The gateway's public surface changes only on purpose."""

from __future__ import annotations

import mloop.gateway


def test_public_names_are_exactly_these() -> None:
    assert mloop.gateway.__all__ == [
        "AbDecision",
        "Case",
        "ChatResult",
        "Client",
        "Deployment",
        "EvalReport",
        "Experiment",
        "ExperimentStore",
        "GatePolicy",
        "Gateway",
        "GatewayConfig",
        "GatewayMetrics",
        "GatewayTracer",
        "Job",
        "JobRunner",
        "JobStore",
        "Ledger",
        "LedgerRow",
        "Limiter",
        "LiveAB",
        "LocalLimiter",
        "MemoryLedger",
        "Priority",
        "PromptRegistry",
        "PromptTemplate",
        "PromptVersion",
        "QuotaUse",
        "Route",
        "SqlJobStore",
        "SqlLedger",
        "StreamResult",
        "Verdict",
        "ab_decision",
        "assign_arm",
        "budget_caps",
        "create_app",
        "error_body",
        "evaluate",
        "exact_match",
        "gate_verdict",
        "gateway_status",
        "json_schema_valid",
        "ledger_for",
        "llm_judge",
        "load_cases",
        "load_config",
        "numeric_tolerance",
        "parse_config",
        "regex_match",
        "spend_report",
    ]
    for name in mloop.gateway.__all__:
        obj = getattr(mloop.gateway, name)
        assert getattr(obj, "__doc__", None) or name == "Priority", name


def test_cli_exposes_serve_and_check() -> None:
    from typer.testing import CliRunner

    from mloop.cli._gateway import gateway_app

    result = CliRunner().invoke(gateway_app, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "check" in result.output


def test_cli_check_prints_each_chain(tmp_path: object) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from mloop.cli._gateway import gateway_app

    docs = Path(__file__).parents[3] / "docs" / "gateway.md"
    block = docs.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    path = Path(str(tmp_path)) / "gateway.toml"
    path.write_text(block)
    result = CliRunner().invoke(gateway_app, ["check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "smart: gpt-large (openai:gpt-4o" in result.output
    missing = CliRunner().invoke(gateway_app, ["check", "--config", str(path) + ".nope"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
