"""The API process's settings: one pydantic-settings class, read from FABRICML_API_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where the org's network state lives and how the API guards itself.

    There are no secrets here: the API reads the org's keys from the state directory,
    and clients authenticate with certificates, so nothing needs a default password."""

    model_config = SettingsConfigDict(env_prefix="FABRICML_API_", extra="forbid")

    org: str = Field(description="Organization this API acts for, e.g. org1")
    state_dir: Path = Field(description="The network's state directory (.fabricml/<name>)")
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, description="Default: the org's base port + 60")
    admin_identity: str = Field(default="admin", description="Signs transactions of API admins")
    auditor_identity: str = Field(default="auditor", description="Signs the queries of auditors")
    trainer_identity: str = Field(default="trainer", description="Registers models, joins tasks")
    rate_per_second: float = Field(default=20.0, gt=0, description="Sustained requests per client")
    rate_burst: int = Field(default=60, ge=1, description="Requests a client may send at once")
    group_rate_per_second: float = Field(
        default=60.0, gt=0, description="Sustained requests of one org (this org: of one API role) together"
    )
    group_rate_burst: int = Field(default=240, ge=1, description="Requests of one org (or role) at once")
    max_body_bytes: int = Field(default=64 << 10, ge=1024, description="Largest JSON request body")
    max_upload_bytes: int = Field(default=64 << 20, ge=1024, description="Largest model upload")
    ledger_timeout_s: float = Field(default=60.0, gt=0, description="Longest wait for one ledger call")
    follow_events: bool = Field(default=True, description="Index chaincode events for the dashboard")


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()  # type: ignore[call-arg]  # org and state_dir come from the environment
