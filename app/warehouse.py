"""An object-store warehouse (AUTOLOADER_WAREHOUSE = s3://, az://, abfss://, gs://…) probed through delta-rs itself:
the same client, with the same AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS, that the embedded engine writes tables with.

At the server's start a probe writes a one-row Delta table under `<warehouse>/_autoloader_probe/` and deletes it
(listing, an object PUT and the conditional commit: what every load does); a warehouse that fails it stops the
start with the reason. The health check only lists the warehouse root: it is polled, and must write nothing."""

from __future__ import annotations

import uuid

from core.engines.warehouse_errors import WAREHOUSE_SETTINGS, plain_reason
from core.errors import ConfigError

PROBE_FOLDER = "_autoloader_probe"
GCS_EMULATOR_HINT = (
    "delta-rs reaches GCS through its XML API (GET /<bucket>?list-type=2, PUT /<bucket>/<object>): the endpoint in "
    "google_base_url must serve it. fake-gcs-server does not (404 on the listing; 400 'invalid uploadType' on an "
    "unsigned PUT), so it cannot hold a warehouse (docs/operator-guide.md, Warehouse)."
)
PROBE_LIMITS = {"connect_timeout": "3s", "timeout": "10s", "max_retries": "1", "retry_timeout": "10s"}
"""Both probes give up within seconds: delta-rs retries 10 times by default, up to 3 minutes, and /health is polled
(a load's own writes keep the defaults)."""


def is_object_store(warehouse: str) -> bool:
    return "://" in warehouse and not warehouse.startswith("file://")


def _hint(warehouse: str, options: dict[str, str]) -> str:
    if warehouse.startswith("gs://") and any(key.lower().endswith("base_url") for key in options):
        return " " + GCS_EMULATOR_HINT
    return ""


def list_root(warehouse: str, options: dict[str, str]) -> str | None:
    """None when delta-rs lists the warehouse root; else why not, within seconds (PROBE_LIMITS)."""
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    try:
        DeltaStorageHandler(warehouse.rstrip("/"), {**options, **PROBE_LIMITS}).get_file_info_selector(
            pafs.FileSelector("", allow_not_found=True, recursive=False)
        )
    except Exception as exc:  # delta-rs raises OSError, DeltaError or a panic's exception: all mean unreachable
        return plain_reason(exc, options) + _hint(warehouse, options)
    return None


def write_probe_table(warehouse: str, options: dict[str, str]) -> str | None:
    """None when delta-rs creates (and then deletes) a one-row Delta table in the warehouse; else why not, within
    seconds (PROBE_LIMITS)."""
    import pyarrow as pa
    from deltalake import write_deltalake
    from deltalake.fs import DeltaStorageHandler

    root, bounded = warehouse.rstrip("/"), {**options, **PROBE_LIMITS}
    name = f"{PROBE_FOLDER}/{uuid.uuid4().hex}"
    try:
        write_deltalake(f"{root}/{name}", pa.table({"probe": [1]}), storage_options=bounded)
        DeltaStorageHandler(root, bounded).delete_dir(name)
    except Exception as exc:  # as in list_root
        return plain_reason(exc, options) + _hint(warehouse, options)
    return None


def require_writable_warehouse(warehouse: str, options: dict[str, str]) -> None:
    """The server's start: an object-store warehouse that delta-rs cannot write a table into is refused now, with
    why, rather than at every run (a local folder is checked by the health check and the first run)."""
    if not is_object_store(warehouse):
        return
    why = write_probe_table(warehouse, options)
    if why is not None:
        raise ConfigError(
            f"The warehouse {warehouse} cannot hold tables: delta-rs could not write a probe table there ({why}).",
            f"Fix {WAREHOUSE_SETTINGS} (bucket or container, endpoint, credentials; see docs/operator-guide.md, "
            "Warehouse), or unset AUTOLOADER_WAREHOUSE to keep the tables in <data dir>/warehouse.",
            field="AUTOLOADER_WAREHOUSE",
        )
