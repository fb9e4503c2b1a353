"""Work that outgrows one process: batch scoring and drift counting over partitioned data.

The same two jobs run on two engines. ``local`` reads the partitions in this
process, chunk by chunk. ``ray`` (the ``ray`` extra, imported only when chosen)
spreads them over a Ray cluster with Ray Data: each scoring worker loads the model
once, and each drift task counts its blocks into the monitor's ``WindowCounts``,
which merge exactly, so both engines give the same answer to the last row and count.
"""

from mloop.batch._drift import partition_counts
from mloop.batch._score import predictions_frame, score_partitions
from mloop.batch._source import parquet_paths

__all__ = ["parquet_paths", "partition_counts", "predictions_frame", "score_partitions"]
