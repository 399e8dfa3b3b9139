"""The Spark engine: a Spark cluster reached through Spark Connect reads the files and writes the table.

The service stays the control plane (discovery, ledger, schema decisions); this engine sends the cluster
exactly the discovered file list and commits one batch per call, under the same contract as the embedded one.

- `session`: the cluster's connection details, the pooled Spark Connect session, "test connection".
- `reading`: the DataFrame reader per source format, schema inference, a batch read with its per-file counts.
- `table`: the destination table and the `TableFormat` interface; `delta`, `iceberg`, `parquet` implement it,
  each with its own exactly-once marker (see their docstrings); `lake` is what Delta and Iceberg share.
- `errors`: Spark Connect errors as the product's typed errors.
- `engine`: `SparkEngine`, the engine port, delegating to the above.

pyspark is imported lazily: the embedded engine and the service work without it.
"""

from core.engines.spark.engine import SparkEngine
from core.engines.spark.errors import (
    ClusterAuthError,
    ClusterUnreachable,
    FormatNotSupported,
    MalformedInput,
    translate,
)
from core.engines.spark.formats import TABLE_FORMATS, commit_options, merge_confs
from core.engines.spark.lake import merge_sql
from core.engines.spark.session import ClusterCheck, ClusterTarget, connect_session

__all__ = [
    "TABLE_FORMATS",
    "ClusterAuthError",
    "ClusterCheck",
    "ClusterTarget",
    "ClusterUnreachable",
    "FormatNotSupported",
    "MalformedInput",
    "SparkEngine",
    "commit_options",
    "connect_session",
    "merge_confs",
    "merge_sql",
    "translate",
]
