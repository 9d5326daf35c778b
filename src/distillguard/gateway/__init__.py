"""The gateway: an OpenAI-compatible server that keys, logs and rate-limits by risk.

Edge package (FastAPI, aiohttp, limits, psycopg are imported inside its modules).
"""

from __future__ import annotations

from distillguard._lazy import lazy_exports

# Lazy so `import distillguard.gateway` does not pull in FastAPI.
_EXPORTS: dict[str, str] = {
    "create_app": "distillguard.gateway.app",
    "load_settings": "distillguard.gateway.settings",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
