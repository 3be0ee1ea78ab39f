"""Cursor pagination of list endpoints: newest first, opaque cursors, bounded pages.

Why ``created_at`` then the document id, both descending: the order is total (ids break ties) and fixed for a
document's life, so walking the pages with the cursor sees every document that existed when the walk began
exactly once, whatever is inserted meanwhile (an insert lands before the cursor, or, with a skewed clock, after it:
then it is seen once, never twice). Why opaque: the cursor is ``base64url`` of JSON holding the last item's position
and a fingerprint of the list it came from, so a cursor handed to another list (or edited) is a 400, not a silently
wrong page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.edge import EdgeError, firestore_id_problem

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_CURSOR_CHARS = 512


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def page_request(args: Mapping[str, str]) -> PageRequest:
    """``limit`` (1..100, default 10) and ``starting_after`` (a cursor) from the query string; 400 otherwise."""
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not raw_limit.isdigit() or len(raw_limit) > 4 or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise EdgeError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
    cursor = args.get("starting_after") or None
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        raise EdgeError(400, "invalid_cursor", "starting_after is not a cursor of this list")
    return PageRequest(limit, cursor)


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def encode_cursor(scope: str, created_at: dt.datetime, doc_id: str) -> str:
    raw = json.dumps({"s": _fingerprint(scope), "t": created_at.astimezone(dt.UTC).isoformat(), "i": doc_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(scope: str, cursor: str) -> tuple[dt.datetime, str]:
    """The position a cursor names; 400 ``invalid_cursor`` for anything not made by :func:`encode_cursor` here."""
    bad = EdgeError(400, "invalid_cursor", "starting_after is not a cursor of this list")
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or raw.get("s") != _fingerprint(scope):
            raise bad
        t = dt.datetime.fromisoformat(raw["t"])
        doc_id = raw["i"]
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        raise bad from None
    if t.tzinfo is None or not isinstance(doc_id, str) or firestore_id_problem(doc_id):
        raise bad
    return t, doc_id


@dataclass(frozen=True, slots=True)
class Page:
    data: list[dict[str, Any]]
    has_more: bool
    next_cursor: str | None

    def body(self) -> dict[str, Any]:
        return {"object": "list", "data": self.data, "has_more": self.has_more, "next_cursor": self.next_cursor}


def list_page(
    collection: Any,
    scope: str,
    page: PageRequest,
    view: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    filters: Mapping[str, Any] | None = None,
) -> Page:
    """One page of ``collection`` (optionally ``field == value`` for each filter), newest first.

    ``scope`` names the list (path and filters): a cursor is only valid for the same scope. Reads ``limit + 1``
    documents to know whether there is more.
    """
    from google.cloud.firestore import Query
    from google.cloud.firestore_v1.base_query import FieldFilter

    q = collection
    for field, value in (filters or {}).items():
        q = q.where(filter=FieldFilter(field, "==", value))
    q = q.order_by("created_at", direction=Query.DESCENDING).order_by("__name__", direction=Query.DESCENDING)
    if page.cursor is not None:
        t, doc_id = decode_cursor(scope, page.cursor)
        q = q.start_after({"created_at": t, "__name__": collection.document(doc_id)})
    snaps = list(q.limit(page.limit + 1).stream())
    more = len(snaps) > page.limit
    snaps = snaps[: page.limit]
    data = [view(s.to_dict() or {}) for s in snaps]
    nxt = None
    if more:
        last = snaps[-1]
        nxt = encode_cursor(scope, (last.to_dict() or {})["created_at"], last.id)
    return Page(data, more, nxt)
