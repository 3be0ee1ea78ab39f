"""Lazily created, process-wide Google Cloud clients that honour the emulator variables.

The client libraries are imported on first use, not at module import, so a function's cold start pays
only for the clients it really touches. Each client is created once per (kind, project) and reused
across requests, as Cloud Functions recommends.

With ``USAGE_METERING`` on, the clients count their billable operations (:mod:`shared.usage`): Firestore
through a gRPC interceptor on its channel, Pub/Sub in ``publish``, Storage in its HTTP session. Off, they
are the plain library clients.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from shared.config import get_settings
from shared.once import once

if TYPE_CHECKING:
    from google.cloud.firestore import Client as FirestoreClient
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.storage import Client as StorageClient


@once
def _firestore(project: str, metered: bool = False) -> FirestoreClient:
    from google.cloud.firestore import Client

    # With FIRESTORE_EMULATOR_HOST set the library talks to the emulator with fake credentials.
    return _metered_firestore_class()(project=project) if metered else Client(project=project)


@functools.cache
def _metered_firestore_class() -> type[FirestoreClient]:
    """A Firestore client whose gRPC channel (emulator or cloud) carries the usage interceptor.

    The library builds its channel lazily inside ``_firestore_api_helper`` and creates its stubs when the
    transport is constructed, so the only place to wrap the channel is the transport's constructor.
    """
    import grpc  # type: ignore[import-untyped]
    from google.cloud.firestore import Client

    from shared import usage

    interceptor = usage.firestore_interceptor()

    class MeteredFirestore(Client):
        def _firestore_api_helper(self, transport: Any, client_class: Any, client_module: Any) -> Any:
            def init(tr: Any, *args: Any, channel: Any = None, **kwargs: Any) -> None:
                if isinstance(channel, grpc.Channel):
                    channel = grpc.intercept_channel(channel, interceptor)
                transport.__init__(tr, *args, channel=channel, **kwargs)

            # Same class name: the library picks the emulator channel's flavour (sync/async) from it.
            metered_transport = type(transport.__name__, (transport,), {"__init__": init})
            return super()._firestore_api_helper(metered_transport, client_class, client_module)

    return MeteredFirestore


@once
def _publisher(project: str, metered: bool = False) -> PublisherClient:
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.pubsub_v1.types import BatchSettings

    # Small batches: a function answers only after its publish is acknowledged, so latency wins.
    batch = BatchSettings(max_messages=100, max_latency=0.005)
    if not metered:
        return PublisherClient(batch_settings=batch)

    from shared import usage

    class MeteredPublisher(PublisherClient):  # type: ignore[misc]
        """Counts each message where the caller publishes it (the batch RPC runs on another thread)."""

        def publish(self, topic: str, data: bytes, *args: Any, **attrs: Any) -> Any:
            usage.count_publish(
                topic, data, {k: v for k, v in attrs.items() if k not in ("ordering_key", "retry", "timeout")}
            )
            return super().publish(topic, data, *args, **attrs)

    return MeteredPublisher(batch_settings=batch)


@once
def _storage(project: str, emulator: str | None, metered: bool = False) -> StorageClient:
    from google.cloud.storage import Client

    if emulator:
        from google.auth.credentials import AnonymousCredentials

        client = Client(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    else:
        client = Client(project=project)
    if metered:
        from shared import usage

        usage.meter_http(client._http)
    return client


def firestore() -> FirestoreClient:
    s = get_settings()
    return _firestore(s.project_id, s.usage_metering)


def publisher() -> PublisherClient:
    s = get_settings()
    return _publisher(s.project_id, s.usage_metering)


def storage() -> StorageClient:
    s = get_settings()
    return _storage(s.project_id, s.storage_emulator_host, s.usage_metering)


@once
def emulator_bucket(project: str, bucket: str) -> None:
    """Create ``bucket`` on the Storage emulator, once per process and project. Only for the emulator: in the
    cloud every bucket is infrastructure (Terraform), never created by code."""
    from google.api_core.exceptions import Conflict, NotFound

    client = storage()
    try:
        client.get_bucket(bucket)
    except NotFound:
        try:
            client.create_bucket(bucket)
        except Conflict:
            pass


def reset_clients() -> None:
    for f in (_firestore, _publisher, _storage, emulator_bucket):  # the metered classes are stateless
        f.cache_clear()
