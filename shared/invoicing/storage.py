"""Cloud Storage for issued documents: write once under a stable name, never rewrite.

A legal document, once issued, must not change. Objects are uploaded with ``if_generation_match=0``
(create-only: Cloud Storage answers 412 when the name exists). The local storage emulator ignores
generation preconditions, so an existence check comes first as well; either way, when the object is
already there its stored bytes win and their hash is what the caller records.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import clients
from shared.config import get_settings
from shared.invoicing.pdf import sha256


@dataclass(frozen=True, slots=True)
class Stored:
    uri: str
    sha256: str
    size: int
    created: bool  # False when the object already existed (a redelivery)


def object_name(series_id: str, number: str) -> str:
    return f"invoices/{series_id}/{number}.pdf"


@functools.cache
def _ensure_bucket(project: str, bucket: str, on_emulator: bool) -> None:
    """Locally the bucket is created on first use; in the cloud Terraform owns it (never created here)."""
    if not on_emulator:
        return
    from google.api_core.exceptions import Conflict, NotFound

    client = clients.storage()
    try:
        client.get_bucket(bucket)
    except NotFound:
        try:
            client.create_bucket(bucket)
        except Conflict:
            pass


def put_once(name: str, data: bytes, content_type: str = "application/pdf") -> Stored:
    """Store ``data`` at ``name`` unless an object is there already; report what is stored."""
    from google.api_core.exceptions import PreconditionFailed

    s = get_settings()
    _ensure_bucket(s.project_id, s.invoice_bucket, bool(s.storage_emulator_host))
    blob = clients.storage().bucket(s.invoice_bucket).blob(name)
    uri = f"gs://{s.invoice_bucket}/{name}"
    if not blob.exists():
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0)
        except PreconditionFailed:
            pass  # a concurrent delivery stored it first: theirs stands
        else:
            return Stored(uri, sha256(data), len(data), True)
    existing = blob.download_as_bytes()
    return Stored(uri, sha256(existing), len(existing), False)


def get(uri: str) -> bytes:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bytes(clients.storage().bucket(bucket).blob(name).download_as_bytes())
