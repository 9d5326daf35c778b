"""Edge: push to and pull from a TAXII 2.1 collection with ``taxii2-client``.

Works against any TAXII 2.1 server (ours, OASIS ``medallion``, commercial ones). Network and
protocol failures become :class:`ExchangeError` with the server's answer, never a traceback.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from distillguard.errors import DistillGuardError, InputError, missing_extra
from distillguard.intel.importer import parse_time

__all__ = ["ExchangeError", "PullResult", "PushResult", "pull", "push"]


class ExchangeError(DistillGuardError):
    """The TAXII server could not be reached, refused us, or answered outside the protocol."""


@dataclass(frozen=True)
class PushResult:
    """What the server said about a push.

    ``duplicates`` are objects the server refused because it already holds that exact version
    (re-pushing an export repeats our identity and unchanged objects); ``failures`` are the
    other refusals as ``(id, message)``.
    """

    status: str
    total: int
    success: int
    duplicates: int
    pending: int
    failures: tuple[tuple[str, str], ...] = ()

    @property
    def failure(self) -> int:
        """How many objects the server refused for a reason other than already holding them."""
        return len(self.failures)


@dataclass(frozen=True)
class PullResult:
    """Objects pulled, as a STIX bundle dict, and the ``added_after`` to resume from."""

    bundle: dict[str, Any]
    last_added: str | None
    pages: int


def _collection(url: str, user: str | None, password: str | None) -> Any:
    try:
        from taxii2client.v21 import Collection
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("taxii2-client", "intel") from exc
    if not url.startswith(("http://", "https://")):
        raise ExchangeError(
            f"a collection URL must start with http:// or https://. Got {url[:80]!r} instead."
        )
    return Collection(url.rstrip("/") + "/", user=user, password=password)


def _wrap(exc: Exception, what: str) -> ExchangeError:
    resp = getattr(exc, "response", None)
    detail = ""
    if resp is not None:
        detail = f" (HTTP {resp.status_code}: {resp.text[:300]})"
    return ExchangeError(
        f"{what} failed: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}{detail}"
    )


def push(
    bundle: dict[str, Any],
    url: str,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 60.0,
    send_definitions: bool = False,
) -> PushResult:
    """Add a bundle's objects to the collection at ``url``; returns the final status.

    The two extension-definition objects are left out unless ``send_definitions``: every member
    already has them (their ids are constants of the format), and medallion 3.0 mistakes their
    ``version`` property ("1.0.0") for the object's version and then fails every read of the
    collection with a 500. Raises :class:`ExchangeError` when the server refuses or is
    unreachable.
    """
    col = _collection(url, user, password)
    objects = [
        o
        for o in bundle.get("objects", [])
        if send_definitions or not (isinstance(o, dict) and o.get("type") == "extension-definition")
    ]
    envelope = {"objects": objects}
    try:
        st = col.add_objects(json.dumps(envelope), wait_for_completion=True, poll_interval=1, timeout=timeout)
        refused = [(str(f.get("id", "")), str(f.get("message", ""))[:200]) for f in st.failures]
        held = _held_versions(col, sorted({oid for oid, _ in refused}))
        ours = {o["id"]: _when(o.get("modified") or o.get("created")) for o in objects if isinstance(o, dict)}
        # An SCO has no version of its own; holding its id is holding it (ids are content hashes).
        failures = [
            (oid, msg)
            for oid, msg in refused
            if oid not in held or (ours.get(oid) is not None and ours.get(oid) not in held[oid])
        ]
        dup = len(refused) - len(failures)
    except Exception as exc:  # requests / taxii2client raise many types; all mean "push failed"
        raise _wrap(exc, "push") from None
    return PushResult(st.status, st.total_count, st.success_count, dup, st.pending_count, tuple(failures))


def _when(stamp: Any) -> float | None:
    # Servers echo versions at their own precision ("...00Z", "...00.000000Z"): compare instants.
    try:
        return round(parse_time(stamp), 3) if isinstance(stamp, str) else None
    except InputError:
        return None


def _held_versions(col: Any, ids: list[str], chunk: int = 20) -> dict[str, set[float | None]]:
    # Servers word "already have it" differently; the manifest, asked for exactly those ids, is
    # the protocol's own way to tell a duplicate from a real refusal.
    from taxii2client.v21 import as_pages

    held: dict[str, set[float | None]] = {}
    for i in range(0, len(ids), chunk):
        part = ",".join(ids[i : i + chunk])
        for env in as_pages(col.get_manifest, per_request=100, id=part, version="all"):
            for r in env.get("objects", []):
                held.setdefault(str(r.get("id")), set()).add(_when(r.get("version")))
    return held


def pull(
    url: str,
    user: str | None = None,
    password: str | None = None,
    added_after: str | None = None,
    per_request: int = 100,
) -> PullResult:
    """Fetch every object added after ``added_after`` (all when ``None``), following pages.

    Returns a bundle of the objects (every version) and the last ``date_added`` seen, to pass
    as ``added_after`` next time. Raises :class:`ExchangeError` on failure.
    """
    from taxii2client.v21 import as_pages

    col = _collection(url, user, password)
    kwargs: dict[str, Any] = {"added_after": added_after} if added_after else {}
    objects: list[dict[str, Any]] = []
    last: str | None = added_after
    pages = 0
    try:
        for env in as_pages(col.get_objects, per_request=per_request, **kwargs):
            pages += 1
            objects += env.get("objects", [])
        man = list(as_pages(col.get_manifest, per_request=per_request, **kwargs))
    except Exception as exc:  # see push
        raise _wrap(exc, "pull") from None
    for env in man:
        for rec in env.get("objects", []):
            if last is None or rec.get("date_added", "") > last:
                last = rec["date_added"]
    return PullResult({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}, last, pages)
