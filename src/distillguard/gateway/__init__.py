"""The gateway: an OpenAI-compatible server that keys, logs and rate-limits by risk.

Edge package (FastAPI, aiohttp, limits, psycopg are imported inside its modules).
"""

from __future__ import annotations

__all__ = ["create_app", "load_settings"]


def __getattr__(name: str) -> object:
    # Lazy so `import distillguard.gateway` does not pull in FastAPI.
    if name == "create_app":
        from distillguard.gateway.app import create_app

        return create_app
    if name == "load_settings":
        from distillguard.gateway.settings import load_settings

        return load_settings
    raise AttributeError(name)
