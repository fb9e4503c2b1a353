"""The journal: what serving answered and what the world said back, kept durably.

Every answered prediction is written to a CRC-framed spool before the answer leaves
(group fsync, crash recovery), then compacted exactly once into a log store
(Parquet partitions by model and day, or SQL); records the store cannot hold go to a
dead-letter file, never lost. Delayed labels pass the feedback door (every item
checked, all or nothing per batch) into the feedback log, joined with the
predictions by request id. ``mloop.monitor`` analyses what the journal holds.
"""

from mloop.journal._columns import FEATURE, feature_values, probability_matrix
from mloop.journal._compact import BackgroundCompactor, compact_stream, dead_letter_count
from mloop.journal._feedback import FeedbackLog, FeedbackResult, join_feedback, label_array
from mloop.journal._feedback_door import MAX_FEEDBACK_ITEMS, check_feedback
from mloop.journal._labels import LabelSpaces, as_new_class
from mloop.journal._live_tables import alert_events, alert_state
from mloop.journal._log import DurableLog, PredictionLog
from mloop.journal._logstore import LogStore, ParquetLogStore
from mloop.journal._sqlstore import SqlLogStore
from mloop.journal._storable import LAST_EPOCH_S

__all__ = [
    "FEATURE",
    "LAST_EPOCH_S",
    "MAX_FEEDBACK_ITEMS",
    "BackgroundCompactor",
    "DurableLog",
    "FeedbackLog",
    "FeedbackResult",
    "LabelSpaces",
    "LogStore",
    "ParquetLogStore",
    "PredictionLog",
    "SqlLogStore",
    "alert_events",
    "alert_state",
    "as_new_class",
    "check_feedback",
    "compact_stream",
    "dead_letter_count",
    "feature_values",
    "join_feedback",
    "label_array",
    "probability_matrix",
]
