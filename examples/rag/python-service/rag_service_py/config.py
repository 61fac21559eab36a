"""The service's configuration from the environment: the same variables as the Rust service
(docs/service.md) for what this twin implements. Every problem is one sentence
(`ConfigError`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEV_SECRET = "rag-service-dev-secret"
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """A configuration problem, in one sentence."""


@dataclass(frozen=True)
class Config:
    """What `serve` needs; `Config.from_env()` reads it."""

    database_url: str
    bind_host: str
    bind_port: int
    jwt_secret: bytes
    jwt_issuer: str
    jwt_audience: str
    jwt_leeway_secs: int
    jwt_max_lifetime_secs: int | None
    body_limit_bytes: int
    max_page_size: int
    max_k: int
    db_max_connections: int
    statement_timeout_ms: int
    dev: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dev: bool = False) -> Config:
        """Reads the `RAG_*` variables. Outside development mode (`dev` or `TENANCY_DEV=1`)
        the built-in JWT secret and secrets shorter than 32 bytes are refused."""
        env = os.environ if env is None else env
        dev = dev or env.get("TENANCY_DEV") == "1"
        url = env.get("RAG_DATABASE_URL", "")
        if not url:
            raise ConfigError("RAG_DATABASE_URL is required (the URL of the application role)")
        secret = env.get("RAG_JWT_SECRET")
        if secret is None:
            if not dev:
                raise ConfigError(
                    "RAG_JWT_SECRET is required outside development mode (the built-in "
                    "development secret would let anyone mint tokens)"
                )
            secret = DEV_SECRET
        elif not dev and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"RAG_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes outside development mode"
            )
        host, port = _bind(env.get("RAG_BIND", "127.0.0.1:8080"))
        lifetime = _int(env, "RAG_JWT_MAX_LIFETIME_SECS", 86400)
        return cls(
            database_url=sqlalchemy_url(url),
            bind_host=host,
            bind_port=port,
            jwt_secret=secret.encode(),
            jwt_issuer=env.get("RAG_JWT_ISSUER", "rag-service-dev"),
            jwt_audience=env.get("RAG_JWT_AUDIENCE", "rag-service"),
            jwt_leeway_secs=_int(env, "RAG_JWT_LEEWAY_SECS", 30),
            jwt_max_lifetime_secs=None if lifetime == 0 else lifetime,
            body_limit_bytes=_int(env, "RAG_BODY_LIMIT_BYTES", 1024 * 1024),
            max_page_size=_int(env, "RAG_MAX_PAGE_SIZE", 1000, minimum=1),
            max_k=_int(env, "RAG_MAX_K", 100, minimum=1),
            db_max_connections=_int(env, "RAG_DB_MAX_CONNECTIONS", 10, minimum=1),
            statement_timeout_ms=_int(env, "RAG_STATEMENT_TIMEOUT_MS", 5000),
            dev=dev,
        )


def sqlalchemy_url(url: str) -> str:
    """`postgres://...` and `postgresql://...` -> `postgresql+psycopg://...` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"RAG_BIND must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)
