"""Gateway settings: a frozen, validated dataclass read from a TOML/JSON file and the environment.

Refuses to run with an empty or well-known admin token unless ``dev`` is set, so a gateway is
never exposed with a default secret.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from distillguard.errors import ConfigError

__all__ = ["Settings", "default_home", "load_settings"]

_WEAK_TOKENS = frozenset({"", "admin", "changeme", "secret", "password", "token"})
_BACKENDS = ("fake", "local", "openai")
_BANDS = ("normal", "throttle", "restrict", "block")


def default_home() -> Path:
    """Return the data directory: ``$DISTILLGUARD_HOME`` or ``./.distillguard``."""
    return Path(os.environ.get("DISTILLGUARD_HOME", ".distillguard"))


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs; build with :func:`load_settings` or directly in tests."""

    admin_token: str
    store_url: str = "sqlite:///.distillguard/gateway.db"
    backend: str = "fake"
    upstream_url: str | None = None
    upstream_api_key: str | None = None
    upstream_timeout_s: float = 30.0
    models: tuple[str, ...] = ("smollm2-135m-instruct",)
    redis_url: str | None = None
    limit_prefix: str = "dg"
    requests_per_minute: int = 600
    tokens_per_minute: int = 200_000
    retain_text: bool = True
    max_body_bytes: int = 1_000_000
    log_queue_size: int = 10_000
    spool_path: str = ".distillguard/spool.jsonl"
    key_file: str = ".distillguard/watermark.key"    # created (0600) on first use if missing
    scheme: str = "kgw"
    canary_bands: tuple[str, ...] = ("throttle", "restrict")
    canary_registry: str = ".distillguard/canaries.json"
    # Seconds an authenticated key (with its account's status, tier and risk) is reused without
    # a store lookup. Changes made through this gateway's admin API apply at once; changes made
    # by another process (CLI, another replica) within this time. 0 = look up every request.
    auth_cache_s: float = 1.0
    dev: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.admin_token, str) or (
            not self.dev and (self.admin_token.lower() in _WEAK_TOKENS or len(self.admin_token) < 16)
        ):
            raise ConfigError(
                "The 'admin_token' parameter of Settings must be a secret string of at least 16 "
                "characters (set DISTILLGUARD_ADMIN_TOKEN). Got an empty, short or default token "
                "instead; pass dev=True only for local development."
            )
        if self.backend not in _BACKENDS:
            raise ConfigError(f"The 'backend' parameter of Settings must be one of {_BACKENDS}. "
                              f"Got {self.backend!r} instead.")
        if self.backend == "openai" and not self.upstream_url:
            raise ConfigError("The 'upstream_url' parameter of Settings is required with "
                              "backend='openai'. Got None instead.")
        for name in ("requests_per_minute", "tokens_per_minute", "max_body_bytes", "log_queue_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"The {name!r} parameter of Settings must be a positive integer. "
                                  f"Got {v!r} instead.")
        for name, hi in (("upstream_timeout_s", 3600.0), ("auth_cache_s", 60.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= hi:
                raise ConfigError(f"The {name!r} parameter of Settings must be a number of seconds "
                                  f"in [0, {hi:g}]. Got {v!r} instead.")
        if not (self.store_url.startswith("sqlite:///") or self.store_url.startswith("postgresql://")):
            raise ConfigError("The 'store_url' parameter of Settings must start with 'sqlite:///' or "
                              f"'postgresql://'. Got {self.store_url!r} instead.")
        if not self.models:
            raise ConfigError("The 'models' parameter of Settings must name at least one model.")
        from distillguard.watermark import schemes

        if self.scheme not in schemes:
            raise ConfigError(f"The 'scheme' parameter of Settings must be one of {schemes.names()}. "
                              f"Got {self.scheme!r} instead.")
        unknown = set(self.canary_bands) - set(_BANDS)
        if unknown:
            raise ConfigError(f"The 'canary_bands' parameter of Settings must list bands from {_BANDS}. "
                              f"Got {sorted(unknown)} instead.")


_ENV = {f.name: f"DISTILLGUARD_{f.name.upper()}" for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if isinstance(value, str):
        if kind == "bool":
            return value.strip().lower() in ("1", "true", "yes", "on")
        if kind == "int":
            try:
                return int(value)
            except ValueError as exc:
                raise ConfigError(f"{_ENV[name]} must be an integer. Got {value!r} instead.") from exc
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list):
        return tuple(value)
    return value


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from a TOML or JSON file, then ``DISTILLGUARD_*`` env vars, then overrides.

    With no admin token anywhere, a random one is generated and written to
    ``<home>/admin_token`` (mode 0600) so the embedded default runs safely out of the box.
    Raises :class:`ConfigError` for unknown keys or invalid values.
    """
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            values = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read gateway config {p}: {exc}") from exc
        unknown = set(values) - set(_ENV)
        if unknown:
            raise ConfigError(f"unknown gateway config keys {sorted(unknown)}; "
                              f"expected some of {sorted(_ENV)}")
    for name, env in _ENV.items():
        if env in os.environ:
            values[name] = os.environ[env]
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = {k: _coerce(k, v) for k, v in values.items()}
    home = default_home()
    values.setdefault("store_url", f"sqlite:///{home / 'gateway.db'}")
    values.setdefault("spool_path", str(home / "spool.jsonl"))
    values.setdefault("key_file", str(home / "watermark.key"))
    values.setdefault("canary_registry", str(home / "canaries.json"))
    if not values.get("admin_token"):
        values["admin_token"] = _persisted_token(home)
    return replace(Settings(admin_token=values.pop("admin_token"), dev=bool(values.get("dev", False))),
                   **{k: v for k, v in values.items() if k != "dev"})


def _persisted_token(home: Path) -> str:
    token_file = home / "admin_token"
    if token_file.exists():
        return token_file.read_text(encoding="utf-8").strip()
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token)
    return token
