"""Deliver a Cloud Storage object-finalize CloudEvent to a local function, as Eventarc would in the cloud.

The storage emulator stores objects but pushes no events, so on the local stack whoever uploads a
settlement report (the demo, the e2e test, a developer) calls :func:`finalize`: it uploads the object
and POSTs the same CloudEvent (binary content mode, type ``google.cloud.storage.object.v1.finalized``,
data = the object's metadata) to the function that the topology's ``bucket_triggers`` names.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid
from typing import Any

EVENT_TYPE = "google.cloud.storage.object.v1.finalized"


def upload(bucket_name: str, name: str, data: bytes) -> dict[str, Any]:
    """Upload to the storage emulator (bucket created on first use); returns the object's metadata."""
    from google.api_core.exceptions import Conflict

    from shared import clients

    client = clients.storage()
    try:
        bucket = client.create_bucket(bucket_name)
    except Conflict:
        bucket = client.bucket(bucket_name)
    blob = bucket.blob(name)
    blob.upload_from_string(data, content_type="text/csv")
    blob.reload()
    return {
        "bucket": bucket_name,
        "name": name,
        "generation": str(blob.generation),
        "size": str(blob.size),
        "contentType": blob.content_type,
        "timeCreated": blob.time_created.isoformat() if blob.time_created else None,
    }


def deliver(url: str, obj: dict[str, Any], timeout_s: float = 120.0) -> int:
    """POST the object-finalize CloudEvent for ``obj`` to ``url``; returns the HTTP status."""
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": uuid.uuid4().hex,
        "ce-type": EVENT_TYPE,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{obj['bucket']}",
        "ce-subject": f"objects/{obj['name']}",
        "ce-time": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    req = urllib.request.Request(url, json.dumps(obj).encode(), headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 (loopback)
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def finalize(url: str, bucket_name: str, name: str, data: bytes) -> tuple[dict[str, Any], int]:
    obj = upload(bucket_name, name, data)
    return obj, deliver(url, obj)
