"""The LLM gateway: turn provider rate limits into scheduling, not outages.

Point any OpenAI client at ``mloop gateway serve``, or use ``Client`` in-process.
A route name (``model``) maps to a fallback chain of deployments; a scheduler
admits calls only when each deployment's quota can take them, by priority.
"""

from mloop.gateway._ab import AbDecision, Experiment, ab_decision, assign_arm
from mloop.gateway._ab_store import ExperimentStore
from mloop.gateway._app import create_app, error_body, ledger_for
from mloop.gateway._client import Client
from mloop.gateway._config import (
    Deployment,
    GatewayConfig,
    PromptTemplate,
    Route,
    load_config,
    parse_config,
)
from mloop.gateway._eval import EvalReport, evaluate
from mloop.gateway._gate import GatePolicy, Verdict, gate_verdict
from mloop.gateway._gateway import ChatResult, Gateway, StreamResult
from mloop.gateway._jobs import Job, JobRunner, JobStore, SqlJobStore
from mloop.gateway._ledger import Ledger, LedgerRow, MemoryLedger, SqlLedger
from mloop.gateway._limiter import Limiter, LocalLimiter
from mloop.gateway._live_ab import LiveAB
from mloop.gateway._metrics import GatewayMetrics
from mloop.gateway._prompts import PromptRegistry, PromptVersion
from mloop.gateway._quota import QuotaUse
from mloop.gateway._scheduler import Priority
from mloop.gateway._scorers import (
    Case,
    exact_match,
    json_schema_valid,
    llm_judge,
    load_cases,
    numeric_tolerance,
    regex_match,
)
from mloop.gateway._spend_report import budget_caps, spend_report
from mloop.gateway._status import gateway_status
from mloop.gateway._tracing import GatewayTracer

__all__ = [
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
