"""Configuration from the environment (prefix AUTOLOADER_)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOLOADER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Metadata DB, warehouse and secret key live here.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the data dir.")
    warehouse: str | None = Field(
        default=None, description="Table root: a folder or s3://…; default <data_dir>/warehouse."
    )
    warehouse_storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs storage options.")
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = Field(default=None, description="Encrypts stored credentials; default: generated once.")
    heartbeat_seconds: float = 5.0
    stale_run_seconds: float = 60.0
    run_workers: int = 4
    schedule_refresh_seconds: float = Field(default=15.0, description="How often a replica picks up others' changes.")
    retry_backoff_seconds: list[float] = Field(
        default_factory=lambda: [60.0, 300.0, 900.0], description="Waits before retries 1, 2, 3 of a transient failure."
    )
    reload_ui: bool = False
    public_url: str = Field(default="http://127.0.0.1:8080", description="Base URL used in alert links.")
    smtp_host: str | None = Field(default=None, description="SMTP server for email alerts; unset = email off.")
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "autoloader@localhost"
    smtp_starttls: bool = False
    alert_check_seconds: float = Field(default=60.0, description="How often SLA and no-new-files checks run.")

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()

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
        return key
