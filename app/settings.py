"""Service settings, from ``TAILCAST_*`` environment variables and `tailcast serve` flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streaming import LogConfig

_MIB = 1024 * 1024
_JWT_SECRET_MIN = 32
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+sentinel://")


class Settings(BaseSettings):
    """Every knob of the service; the README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="TAILCAST_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind (0 picks a free one).")
    http: Literal["auto", "httptools", "h11"] = Field(
        "auto",
        description="HTTP implementation (uvicorn's): auto (httptools when installed), "
        "httptools or h11.",
    )
    publish_token: SecretStr | None = Field(
        None, description="Bearer token producers must send; generated and printed when unset."
    )
    max_body_bytes: int = Field(_MIB, ge=1, description="Largest POST /items body, in bytes.")
    max_batch: int = Field(1000, ge=1, description="Most items in one POST /items array.")
    cache_max_items: int = Field(100_000, ge=1, description="Most items the cache keeps.")
    cache_max_bytes: int = Field(
        256 * _MIB, ge=1, description="Most bytes of encoded items the cache keeps."
    )
    ttl_default: float = Field(3600, gt=0, description="ttl of an item posted without one (s).")
    ttl_min: float = Field(1, gt=0, description="Smallest ttl a producer may ask for (s).")
    ttl_max: float = Field(7 * 86400, gt=0, description="Largest ttl a producer may ask for (s).")
    heartbeat: float = Field(15, gt=0, description="Seconds between heartbeat comments.")
    retry_ms: int = Field(2000, ge=0, description="Reconnect delay hint sent to clients (ms).")
    send_timeout: float = Field(
        30, gt=0, description="Seconds a write to one client may block before it is dropped."
    )
    shutdown_grace: float = Field(
        5, ge=0, description="Seconds open streams get to end cleanly at shutdown."
    )
    live_buffer_items: int = Field(
        4096, ge=1, description="Live items a subscriber may lag before catching up from cache."
    )
    live_buffer_bytes: int = Field(
        16 * _MIB, ge=1, description="Byte bound of the shared live buffer."
    )
    max_topics: int = Field(
        100, ge=1, description="Most topic parameters one GET /stream or GET /items may name."
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        description="Most open connections; past it an idle one is closed to make room, or "
        "the new one refused with 503. Unset: the descriptor limit less 5% (at least 64).",
    )
    max_streams: int | None = Field(
        None,
        ge=1,
        description="Most open streams; past it GET /stream is refused with 503. Unset: "
        "max_connections less 10% (at least 32).",
    )
    request_timeout: float = Field(
        10,
        gt=0,
        description="Seconds a client has to send a whole request (head and body) once it "
        "connects or starts one; slower or silent connections are closed.",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    backend: str = Field(
        "memory",
        description="'memory', or a Redis URL: redis://host:port/db, rediss://..., "
        "redis+sentinel://host:port[,host:port]/master/db.",
    )
    workers: int = Field(
        1, ge=1, description="Worker processes (more than 1 needs the Redis backend)."
    )
    redis_prefix: str = Field("tailcast", description="Prefix of the Redis keys (one log each).")
    redis_max_len: int = Field(
        1_000_000, ge=1, description="Most entries the Redis Stream retains (MAXLEN ~)."
    )
    redis_wait_replicas: int | None = Field(
        None,
        ge=0,
        description="Replicas that must confirm a write before 201 (Redis WAIT); unset: 1 "
        "with a redis+sentinel:// backend, else 0.",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins browsers may call from (CORS); empty: off.",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="HS256 secret (32 bytes or more) of JWTs granting topics; when set, reads "
        "need a JWT and publishing takes one too. Unset: reads are open.",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value != "memory" and not value.startswith(_REDIS_SCHEMES):
            raise ValueError(f"must be 'memory' or a URL starting with {', '.join(_REDIS_SCHEMES)}")
        return value

    @field_validator("max_connections", "max_streams", mode="before")
    @classmethod
    def _empty_limit_is_derived(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("publish_token", "jwt_secret", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("jwt_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518: an HS256 key must be at least as long as the hash (32 bytes).
        if value is not None and len(value.get_secret_value().encode()) < _JWT_SECRET_MIN:
            raise ValueError(f"must be at least {_JWT_SECRET_MIN} bytes (RFC 7518)")
        return value

    def wait_replicas(self) -> int:
        """Replicas a 201 waits for: durable by default where failover can lose writes."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if self.backend.startswith("redis+sentinel://") else 0

    def cors_origin_list(self) -> list[str]:
        """The origins of ``cors_origins``; empty when CORS is off."""
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def log_config(self) -> LogConfig:
        """The core's limits, in its units (milliseconds and bytes)."""
        return LogConfig(
            max_items=self.cache_max_items,
            max_bytes=self.cache_max_bytes,
            ttl_default_ms=round(self.ttl_default * 1000),
            ttl_max_ms=round(self.ttl_max * 1000),
            live_buffer_items=self.live_buffer_items,
            live_buffer_bytes=self.live_buffer_bytes,
        )
