"""Configuration from the environment (prefix AUTOLOADER_)."""

from __future__ import annotations

import logging
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOLOADER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Metadata DB, warehouse and secret key live here.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the data dir.")
    warehouse: str | None = Field(
        default=None,
        description="The embedded engine's table root: a folder, s3://bucket/prefix, az://container/prefix (or "
        "abfss://…) or gs://bucket/prefix; default <data_dir>/warehouse. An object store must take a probe table at "
        "the server's start, or the start stops (operator guide, Warehouse).",
    )
    warehouse_storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="delta-rs storage options of an object-store warehouse (credentials, endpoint), a JSON object: "
        "per cloud in the operator guide, Warehouse.",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = Field(default=None, description="Encrypts stored credentials; default: generated once.")
    heartbeat_seconds: float = 5.0
    stale_run_seconds: float = Field(
        default=60.0,
        description="A run whose heartbeat is older than this is settled as interrupted and its slot taken over.",
    )
    db_retry_seconds: float | None = Field(
        default=None,
        description="How long a run retries the metadata DB in an outage before it fails as transient; "
        "default: the stale-run window less two heartbeats (a run must give up before its slot can be taken over).",
    )
    storage_retry_attempts: int = Field(
        default=4, ge=1, le=20, description="Attempts of a storage list/open/read that fails transiently, in a run."
    )
    storage_retry_base_seconds: float = Field(
        default=0.5, ge=0, le=60, description="First wait between storage attempts; doubles each time (jittered)."
    )
    storage_retry_cap_seconds: float = Field(default=8.0, ge=0, le=300, description="Longest wait between attempts.")
    run_workers: int = 4
    schedule_refresh_seconds: float = Field(default=15.0, description="How often a replica picks up others' changes.")
    retry_backoff_seconds: list[float] = Field(
        default_factory=lambda: [60.0, 300.0, 900.0], description="Waits before retries 1, 2, 3 of a transient failure."
    )
    reload_ui: bool = False
    public_url: str = Field(
        default="",
        description="Base URL used in alert links (behind a proxy, its address); unset = the served host and port.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for email alerts; unset = email off.")
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "autoloader@localhost"
    smtp_starttls: bool = False
    alert_check_seconds: float = Field(default=60.0, description="How often SLA and no-new-files checks run.")
    allow_short_vacuum_retention: bool = Field(
        default=False,
        description="Allow a table maintenance's vacuum to keep less than 168 h (7 days) of history: files a slow "
        "reader of an older version, or a run not yet committed, needs could be deleted.",
    )
    # --- what configurations may reach (core/guards.py, core/egress.py) -----------------------------------------
    local_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders local sources may read, comma-separated; default <data_dir>/landing (created at start).",
    )
    egress_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDRs, comma-separated, that S3 endpoints, webhooks and clusters may reach although "
        "they are loopback, private or link-local addresses.",
    )

    @field_validator("local_roots", "egress_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_local_roots(self) -> list[Path]:
        return self.local_roots or [self.data_dir / "landing"]

    # --- sign-in and API access -------------------------------------------------------------------------------
    admin_email: str | None = Field(default=None, description="The first admin, created at start if missing.")
    admin_password: str | None = Field(default=None, description="That admin's password (10+ characters).")
    admin_token: str | None = Field(
        default=None, description="An API token for automation: an admin token of the first tenant, set at start."
    )
    rate_limit_per_minute: int = Field(default=100, ge=0, description="API requests per user and minute; 0 = off.")
    login_attempts_per_minute: int = Field(default=10, ge=1, description="Login attempts per client address.")

    spark_csv_on_workers: bool = Field(
        default=True,
        description="The Spark engine parses CSV on the cluster's Python workers with the product's own reader "
        "where they have the product installed (the local cluster's do); false: always Spark's CSV reader.",
    )

    # --- operating it: metrics and logs (docs/OPERATIONS-metrics.md) -------------------------------------------
    metrics_public: bool = Field(
        default=False, description="Serve GET /metrics without a token (default: an instance admin's API token)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: one readable line per record; json: one JSON object per line."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="WARNING", description="The least severe level written; INFO adds a line as each run starts and ends."
    )

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()

    @property
    def resolved_db_retry_seconds(self) -> float:
        if self.db_retry_seconds is not None:
            return self.db_retry_seconds
        return max(self.heartbeat_seconds, self.stale_run_seconds - 2 * self.heartbeat_seconds)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'autoloader.db'}"

    @property
    def resolved_warehouse(self) -> str:
        return self.warehouse or str(self.data_dir / "warehouse")

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, else one generated on first start and kept (mode 0600) in the data dir."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret.key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        key_file.write_text(key)
        key_file.chmod(0o600)
        logging.getLogger(__name__).warning(
            "generated the master key %s (mode 0600): back it up with the metadata database, or set "
            "AUTOLOADER_SECRET_KEY; without it, stored credentials cannot be decrypted",
            key_file,
        )
        return key
