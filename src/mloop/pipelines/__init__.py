"""Retraining pipelines: trigger → dataset snapshot → validation → train → gate → register → rollout.

Declare a :class:`Pipeline` (load, train, optional evaluate), run it with a
:class:`Runner` (every run and step recorded, retried, resumable), and let a
:class:`TriggerService` start runs from schedules, alerts, new labels or a person.
"""

from mloop.pipelines._checks import Check, Report
from mloop.pipelines._configured import configured_pipelines
from mloop.pipelines._cron import CronSchedule
from mloop.pipelines._dataset import DatasetSnapshot, load_snapshot, snapshot
from mloop.pipelines._file_source import FileSource
from mloop.pipelines._gate import GateConfig, SliceScore, gate_decision, slice_scores, time_holdout
from mloop.pipelines._http_source import HttpJsonSource
from mloop.pipelines._ingest import (
    INGEST_STEPS,
    FrameSource,
    IngestFlow,
    as_prefect_ingest_flow,
    run_ingest,
)
from mloop.pipelines._metrics import HIGHER_IS_BETTER, as_model, score
from mloop.pipelines._mlflow import MlflowTracker
from mloop.pipelines._prefect import as_prefect_flow
from mloop.pipelines._protocols import LabeledSource, RolloutStarter, RunTracker
from mloop.pipelines._runner import Runner
from mloop.pipelines._service import TriggerOutcome, TriggerService
from mloop.pipelines._sources import LogFeedbackSource, PredictionReader
from mloop.pipelines._spec import (
    Pipeline,
    RolloutConfig,
    TrainingData,
    Window,
    load_pipeline,
    parse_seconds,
    pipeline_from_table,
)
from mloop.pipelines._sql_sink import SqlSink, WriteResult
from mloop.pipelines._sql_source import SqlTableLoader
from mloop.pipelines._steps import STEPS
from mloop.pipelines._store import PipelineDefinition, Run, RunStore, StepRecord
from mloop.pipelines._triggers import (
    TriggerConfig,
    TriggerDecision,
    TriggerEvent,
    TriggerState,
    decide,
    run_finished,
)
from mloop.pipelines._validation import ValidationConfig, validate_data

__all__ = [
    "HIGHER_IS_BETTER",
    "INGEST_STEPS",
    "STEPS",
    "Check",
    "CronSchedule",
    "DatasetSnapshot",
    "FileSource",
    "FrameSource",
    "GateConfig",
    "HttpJsonSource",
    "IngestFlow",
    "LabeledSource",
    "LogFeedbackSource",
    "MlflowTracker",
    "Pipeline",
    "PipelineDefinition",
    "PredictionReader",
    "Report",
    "RolloutConfig",
    "RolloutStarter",
    "Run",
    "RunStore",
    "RunTracker",
    "Runner",
    "SliceScore",
    "SqlSink",
    "SqlTableLoader",
    "StepRecord",
    "TrainingData",
    "TriggerConfig",
    "TriggerDecision",
    "TriggerEvent",
    "TriggerOutcome",
    "TriggerService",
    "TriggerState",
    "ValidationConfig",
    "Window",
    "WriteResult",
    "as_model",
    "as_prefect_flow",
    "as_prefect_ingest_flow",
    "configured_pipelines",
    "decide",
    "gate_decision",
    "load_pipeline",
    "load_snapshot",
    "parse_seconds",
    "pipeline_from_table",
    "run_finished",
    "run_ingest",
    "score",
    "slice_scores",
    "snapshot",
    "time_holdout",
    "validate_data",
]
