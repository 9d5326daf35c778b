"""Edge: our TAXII 2.1 server (FastAPI) over :class:`~distillguard.intel.store.IntelStore`.

Endpoints (TAXII 2.1 §4-5): discovery ``/taxii2/``, the API root ``/{root}/``, collections,
one collection, its objects (``GET`` with ``added_after``, ``limit``/``next`` paging and
``match[id|type|version]``; ``POST`` an envelope), one object and its versions, the manifest,
and status. Partners authenticate with HTTP Basic (name, token); each collection grants them
read and/or write. Posted content passes the importer's validation and must come from the
partner's bound identity; it is stored whole or rejected whole (422 with the reasons). Every
error is a TAXII error body with a 4xx status; nothing a client sends yields a 500.
"""

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from distillguard.errors import InputError, missing_extra
from distillguard.intel.importer import BundleRejected, Limits, validate_objects
from distillguard.intel.store import IntelStore, Partner, object_version, parse_added_after, taxii_time

__all__ = ["TAXII_MEDIA", "ServerConfig", "create_app"]

TAXII_MEDIA = "application/taxii+json;version=2.1"
_MAX_LIMIT = 1000


@dataclass(frozen=True)
class ServerConfig:
    """Names and limits of the served API root."""

    api_root: str = "api1"
    title: str = "distillguard TAXII 2.1"
    description: str = "Pseudonymised indicators of LLM distillation campaigns"
    max_content_length: int = 16 * 1024 * 1024
    page_size: int = 100


class TaxiiError(Exception):
    """An error answered as a TAXII error resource."""

    def __init__(self, status: int, title: str, description: str = "", headers: dict[str, str] | None = None):
        super().__init__(title)
        self.status, self.title, self.description, self.headers = status, title, description, headers or {}


def create_app(store: IntelStore, config: ServerConfig | None = None) -> Any:
    """Return the FastAPI application serving ``store`` (raises if fastapi is not installed)."""
    try:
        from fastapi import Depends, FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import Response
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("fastapi", "intel") from exc

    cfg = config or ServerConfig()
    app = FastAPI(title=cfg.title, docs_url=None, redoc_url=None, openapi_url=None)
    root = f"/{cfg.api_root}"

    def taxii(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        return Response(json.dumps(body), status_code=status, media_type=TAXII_MEDIA, headers=headers)

    def error(status: int, title: str, description: str = "", headers: dict[str, str] | None = None) -> Any:
        return taxii(
            {"title": title, "description": description, "http_status": str(status)}, status, headers
        )

    @app.exception_handler(TaxiiError)
    async def _taxii_error(_req: Any, exc: TaxiiError) -> Any:
        return error(exc.status, exc.title, exc.description, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Any, exc: StarletteHTTPException) -> Any:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Any, exc: RequestValidationError) -> Any:
        return error(400, "invalid request", "; ".join(str(e.get("msg")) for e in exc.errors())[:500])

    def partner(request: Request) -> Partner:
        auth = request.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Basic realm="taxii"'}
        if not auth.lower().startswith("basic "):
            raise TaxiiError(
                401, "authentication required", "use HTTP Basic with your partner name and token", challenge
            )
        try:
            name, _, token = base64.b64decode(auth[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise TaxiiError(401, "malformed credentials", headers=challenge) from None
        who = store.authenticate(name, token)
        if who is None:
            raise TaxiiError(401, "invalid credentials", headers=challenge)
        return who

    Who = Annotated[Partner, Depends(partner)]

    def accept(request: Request) -> None:
        acc = request.headers.get("accept", "")
        if acc and not any(a in acc for a in ("application/taxii+json", "*/*", "application/*")):
            raise TaxiiError(406, "not acceptable", f"this server answers {TAXII_MEDIA}")

    def collection(who: Partner, cid: str, write: bool = False) -> dict[str, Any]:
        col = next((c for c in store.collections() if c["id"] == cid), None)
        g = who.grant(cid)
        if col is None or not (g.can_read or g.can_write):
            raise TaxiiError(404, "collection not found", cid[:80])
        if write and not g.can_write:
            raise TaxiiError(403, "no write access to this collection")
        if not write and not g.can_read:
            raise TaxiiError(403, "no read access to this collection")
        return {
            **col,
            "can_read": g.can_read,
            "can_write": g.can_write,
            "media_types": ["application/stix+json;version=2.1"],
        }

    def paging(request: Request) -> tuple[str | None, str | None, int]:
        q = request.query_params
        token, after_id = q.get("next"), None
        after = q.get("added_after")
        if token:
            after, sep, after_id = token.partition("|")
            if not sep or not after_id or len(after_id) > 300:
                raise TaxiiError(400, "invalid next token")
        try:
            after_n = parse_added_after(after) if after else None
            limit = int(q.get("limit", cfg.page_size))
        except (InputError, ValueError):
            raise TaxiiError(400, "invalid added_after, next or limit") from None
        if limit < 1:
            raise TaxiiError(400, "limit must be a positive integer")
        return after_n, after_id, min(limit, _MAX_LIMIT)

    def page_headers(added: list[str]) -> dict[str, str]:
        return {"X-TAXII-Date-Added-First": added[0], "X-TAXII-Date-Added-Last": added[-1]} if added else {}

    @app.get("/taxii2/")
    def discovery(who: Who, request: Request) -> Any:
        accept(request)
        base = str(request.base_url).rstrip("/")
        return taxii(
            {
                "title": cfg.title,
                "description": cfg.description,
                "default": f"{base}{root}/",
                "api_roots": [f"{base}{root}/"],
            }
        )

    @app.get(root + "/")
    def api_root(who: Who, request: Request) -> Any:
        accept(request)
        return taxii(
            {
                "title": cfg.title,
                "description": cfg.description,
                "versions": [TAXII_MEDIA],
                "max_content_length": cfg.max_content_length,
            }
        )

    @app.get(root + "/collections/")
    def collections(who: Who, request: Request) -> Any:
        accept(request)
        cols = [collection(who, c["id"]) for c in store.collections() if who.grant(c["id"]).can_read]
        cols += [
            collection(who, c["id"], write=True)
            for c in store.collections()
            if who.grant(c["id"]).can_write and not who.grant(c["id"]).can_read
        ]
        return taxii({"collections": cols} if cols else {})

    @app.get(root + "/collections/{cid}/")
    def get_collection(who: Who, cid: str, request: Request) -> Any:
        accept(request)
        g = who.grant(cid)
        return taxii(collection(who, cid, write=g.can_write and not g.can_read))

    def _objects(who: Partner, cid: str, request: Request, ids: list[str] | None) -> Any:
        collection(who, cid)
        after, after_id, limit = paging(request)
        q = request.query_params
        ids = ids or [v for v in q.get("match[id]", "").split(",") if v] or None
        types = [v for v in q.get("match[type]", "").split(",") if v] or None
        version = q.get("match[version]", "last")
        try:
            objs, added, more = store.get_objects(
                cid, added_after=after, after_id=after_id, limit=limit, ids=ids, types=types, version=version
            )
        except InputError as exc:
            raise TaxiiError(400, "invalid match[version]", str(exc)) from None
        body: dict[str, Any] = {"more": more, "objects": objs} if objs else {"more": False}
        if more:
            body["next"] = f"{added[-1]}|{objs[-1]['id']}"
        return taxii(body, headers=page_headers(added))

    @app.get(root + "/collections/{cid}/objects/")
    def get_objects(who: Who, cid: str, request: Request) -> Any:
        accept(request)
        return _objects(who, cid, request, None)

    @app.get(root + "/collections/{cid}/objects/{oid}/")
    def get_object(who: Who, cid: str, oid: str, request: Request) -> Any:
        accept(request)
        return _objects(who, cid, request, [oid])

    @app.get(root + "/collections/{cid}/objects/{oid}/versions/")
    def versions(who: Who, cid: str, oid: str, request: Request) -> Any:
        accept(request)
        collection(who, cid)
        objs, added, _ = store.get_objects(cid, ids=[oid], version="all", limit=_MAX_LIMIT)
        vs = sorted({object_version(o) for o in objs})
        return taxii({"more": False, "versions": vs} if vs else {}, headers=page_headers(added))

    @app.get(root + "/collections/{cid}/manifest/")
    def manifest(who: Who, cid: str, request: Request) -> Any:
        accept(request)
        collection(who, cid)
        after, after_id, limit = paging(request)
        q = request.query_params
        try:
            recs, more = store.manifest(
                cid,
                added_after=after,
                after_id=after_id,
                limit=limit,
                ids=[v for v in q.get("match[id]", "").split(",") if v] or None,
                types=[v for v in q.get("match[type]", "").split(",") if v] or None,
                version=q.get("match[version]", "all"),
            )
        except InputError as exc:
            raise TaxiiError(400, "invalid match[version]", str(exc)) from None
        body: dict[str, Any] = {"more": more, "objects": recs} if recs else {"more": False}
        if more:
            body["next"] = f"{recs[-1]['date_added']}|{recs[-1]['id']}"
        return taxii(body, headers=page_headers([r["date_added"] for r in recs]))

    @app.post(root + "/collections/{cid}/objects/")
    async def add_objects(who: Who, cid: str, request: Request) -> Any:
        collection(who, cid, write=True)
        ctype = request.headers.get("content-type", "")
        if "application/taxii+json" not in ctype:
            raise TaxiiError(415, "unsupported media type", f"send {TAXII_MEDIA}")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cfg.max_content_length):
            raise TaxiiError(413, "request too large", f"max_content_length is {cfg.max_content_length}")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > cfg.max_content_length:
                raise TaxiiError(413, "request too large", f"max_content_length is {cfg.max_content_length}")
        try:
            envelope = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise TaxiiError(400, "the body is not valid JSON") from None
        if not isinstance(envelope, dict) or "objects" not in envelope:
            raise TaxiiError(422, "the body must be a TAXII envelope {'objects': [...]}")
        try:
            objects, producer = validate_objects(
                envelope["objects"], Limits(max_bytes=cfg.max_content_length)
            )
            if who.identity_id is not None and producer not in (None, who.identity_id):
                raise BundleRejected(
                    [f"objects are created by {producer[:80]}, but this partner writes as {who.identity_id}"]
                )
            stored = store.add_objects(cid, objects, who.identity_id or who.name)
        except BundleRejected as exc:
            raise TaxiiError(422, "objects rejected", "; ".join(exc.reasons)) from None
        now = taxii_time(time.time())
        status = {
            "id": str(uuid.uuid4()),
            "status": "complete",
            "request_timestamp": now,
            "total_count": len(stored),
            "success_count": len(stored),
            "successes": [{"id": s["id"], "version": s["version"]} for s in stored],
            "failure_count": 0,
            "pending_count": 0,
        }
        store.save_status(status, who.name)
        return taxii(status, 202)

    @app.get(root + "/status/{sid}/")
    def get_status(who: Who, sid: str, request: Request) -> Any:
        accept(request)
        st = store.get_status(sid, who.name)  # a partner sees only its own requests
        if st is None:
            raise TaxiiError(404, "status not found")
        return taxii(st)

    return app
