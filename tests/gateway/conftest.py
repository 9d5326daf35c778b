"""Fixtures: a gateway app on a temporary SQLite store with the fake backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ADMIN = "test-admin-token-0123456789"


@dataclass
class Gw:
    client: Any
    app: Any
    admin: dict[str, str]

    async def account(self, name: str = "acme", tier: str = "standard") -> tuple[str, dict[str, str]]:
        r = await self.client.post("/admin/accounts", json={"name": name, "tier": tier}, headers=self.admin)
        assert r.status_code == 201, r.text
        j = r.json()
        return j["account"]["account_id"], {"Authorization": f"Bearer {j['api_key']}"}


def make_settings(tmp_path: Path, **kw: Any) -> Any:
    from distillguard.gateway.settings import Settings

    return Settings(admin_token=ADMIN, store_url=f"sqlite:///{tmp_path / 'gw.db'}",
                    spool_path=str(tmp_path / "spool.jsonl"), key_file=str(tmp_path / "wm.key"),
                    canary_registry=str(tmp_path / "canaries.json"), **kw)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    import httpx

    from distillguard.gateway.app import create_app

    app = create_app(make_settings(tmp_path, requests_per_minute=50))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield Gw(c, app, {"Authorization": f"Bearer {ADMIN}"})
    app.state.writer.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
