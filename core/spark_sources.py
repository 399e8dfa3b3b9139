"""Which sources an ingestion on a Spark cluster can have: local folders and S3 only.

A cluster reads the source files itself, by path. Autoloader maps local and S3 paths for it (file:, s3a:), and gives
it an S3 source's endpoint and access key for that bucket only (`Storage.cluster_options`; ambient credentials are
the cluster's own); it gives a cluster neither an Azure, GCS or SFTP source's credentials nor its endpoint.
Before this check such a run listed the files and then quarantined every one of them as unreadable (the cluster's
"ClassNotFoundException: ...SecureAzureBlobFileSystem", "No FileSystem for scheme sftp"), as if the files were bad.
Saving such an ingestion is refused instead, and a run of one saved before fails with the same words. Kept free of
pyspark and pyarrow: the API imports it on every save."""

from __future__ import annotations

from collections.abc import Iterable

from core.config import IngestionSpec
from core.errors import ConfigError

SPARK_SOURCES: tuple[str, ...] = ("local", "s3")
_LABELS = {"azure_blob": "Azure Blob / ADLS Gen2", "gcs": "Google Cloud Storage", "sftp": "SFTP"}
_TYPE_BY_PREFIX = {"abfss://": "azure_blob", "https://": "azure_blob", "gs://": "gcs", "sftp://": "sftp"}
ACTION = (
    "Run it on the embedded engine (no cluster; an activated ingestion keeps its engine, so create a new one), "
    "or land the files in S3 or a local folder the cluster can read."
)


def refusal(source_type: str) -> ConfigError:
    label = _LABELS.get(source_type, source_type)
    return ConfigError(
        f"A Spark cluster cannot read {label} sources: Autoloader gives the cluster neither the source's "
        "credentials nor its endpoint, so every file would be quarantined as unreadable.",
        ACTION,
        field="cluster_id",
    )


def refuse_source_spark_cannot_read(spec: IngestionSpec) -> None:
    """On saving and on Test & Preview: an ingestion on a cluster must have a local or S3 source."""
    if spec.cluster_id is not None and spec.source.type not in SPARK_SOURCES:
        raise refusal(spec.source.type)


def refuse_paths_spark_cannot_read(paths: Iterable[str]) -> None:
    """At run time, for an ingestion saved before the check: the first path of a source a cluster cannot read."""
    for path in paths:
        for prefix, source_type in _TYPE_BY_PREFIX.items():
            if path.startswith(prefix):
                raise refusal(source_type)
