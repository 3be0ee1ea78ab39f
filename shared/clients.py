"""Lazily created, process-wide Google Cloud clients that honour the emulator variables.

The client libraries are imported on first use, not at module import, so a function's cold start pays
only for the clients it really touches. Each client is created once per (kind, project) and reused
across requests, as Cloud Functions recommends.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from shared.config import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import Client as FirestoreClient
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.storage import Client as StorageClient


@functools.cache
def _firestore(project: str) -> FirestoreClient:
    from google.cloud.firestore import Client

    # With FIRESTORE_EMULATOR_HOST set the library talks to the emulator with fake credentials.
    return Client(project=project)


@functools.cache
def _publisher(project: str) -> PublisherClient:
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.pubsub_v1.types import BatchSettings

    # Small batches: a function answers only after its publish is acknowledged, so latency wins.
    return PublisherClient(batch_settings=BatchSettings(max_messages=100, max_latency=0.005))


@functools.cache
def _storage(project: str, emulator: str | None) -> StorageClient:
    from google.cloud.storage import Client

    if emulator:
        from google.auth.credentials import AnonymousCredentials

        return Client(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return Client(project=project)


def firestore() -> FirestoreClient:
    return _firestore(get_settings().project_id)


def publisher() -> PublisherClient:
    return _publisher(get_settings().project_id)


def storage() -> StorageClient:
    s = get_settings()
    return _storage(s.project_id, s.storage_emulator_host)


def reset_clients() -> None:
    for f in (_firestore, _publisher, _storage):
        f.cache_clear()
