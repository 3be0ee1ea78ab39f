"""Cloud Storage for issued documents: write once, never rewrite, and archive in groups, not one object each.

A legal document, once issued, must not change. Objects are uploaded with ``if_generation_match=0``
(create-only: Cloud Storage answers 412 when the name exists) into the invoice bucket, whose retention
policy (Terraform, lockable) forbids deleting or replacing them. The local storage emulator ignores
generation preconditions, so an existence check comes first as well (not for an archive: its name carries
the digest of its bytes, so what is there is what would be written); either way, when the object is
already there its stored bytes win and their hash is what the caller records.

Why archives: one object write per invoice (Class A, $5 per million) cost a third of the whole renewal
chain's budget. :class:`ArchiveWriter` is a group commit for PDFs, like the numbering allocator's for
numbers: the finalizations of one process that reach the archive at about the same time (they were
numbered in the same batch) are written as ONE zip object, ``invoices/<series>/archive/<first>--<last>-
<digest>.zip``, holding each document under its stable name (``invoices/<series>/<number>.pdf``) and a
``manifest.json`` of their sha256. A finalization returns only after the object holding its PDF is
stored, so nothing is acknowledged before it is archived; a failed write fails every member (Pub/Sub
redelivers them, the deterministic renderer produces the same bytes). A document's URI is the archive's
plus ``!/<stable name>`` (the jar-URL convention); :func:`get` reads a member back.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from dataclasses import dataclass, field

from shared import clients
from shared.config import get_settings
from shared.invoicing.pdf import sha256

MEMBER_SEP = "!/"
MANIFEST = "manifest.json"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same documents give the same archive bytes


@dataclass(frozen=True, slots=True)
class Stored:
    uri: str
    sha256: str
    size: int
    created: bool  # False when the object already existed (a redelivery)


def object_name(series_id: str, number: str) -> str:
    """The stable name of a document: its name inside the archive that holds it."""
    return f"invoices/{series_id}/{number}.pdf"


def put_once(
    name: str, data: bytes, content_type: str = "application/pdf", *, content_addressed: bool = False
) -> Stored:
    """Store ``data`` at ``name`` unless an object is there already; report what is stored.

    ``content_addressed``: ``name`` carries the digest of ``data`` (an archive), so an object already there
    holds these very bytes: no existence check first (a Class B operation per object). In the cloud the
    create-only precondition still refuses a second write (412: the stored bytes are read back); the local
    emulator, which ignores it, rewrites the identical bytes.
    """
    from google.api_core.exceptions import PreconditionFailed

    s = get_settings()
    if s.storage_emulator_host:
        clients.emulator_bucket(s.project_id, s.invoice_bucket)
    blob = clients.storage().bucket(s.invoice_bucket).blob(name)
    uri = f"gs://{s.invoice_bucket}/{name}"
    if content_addressed or not blob.exists():
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0)
        except PreconditionFailed:
            pass  # a concurrent delivery stored it first: theirs stands
        else:
            return Stored(uri, sha256(data), len(data), True)
    existing = blob.download_as_bytes()
    return Stored(uri, sha256(existing), len(existing), False)


def _download(uri: str) -> bytes:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bytes(clients.storage().bucket(bucket).blob(name).download_as_bytes())


def get(uri: str) -> bytes:
    """The bytes of a stored object, or of one document inside an archive (``<archive uri>!/<name>``)."""
    archive, sep, member = uri.partition(MEMBER_SEP)
    data = _download(archive)
    if not sep:
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read(member)


def pack(members: dict[str, bytes]) -> bytes:
    """A deterministic zip of ``members`` (sorted, fixed times, stored) plus the manifest of their sha256."""
    manifest = {name: {"sha256": sha256(data), "size": len(data)} for name, data in sorted(members.items())}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [*sorted(members.items()), (MANIFEST, json.dumps(manifest, sort_keys=True).encode())]:
            z.writestr(zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), data)
    return buf.getvalue()


def archive_name(series_id: str, members: dict[str, bytes], packed: bytes) -> str:
    """``invoices/<series>/archive/<first>--<last>-<digest>.zip``: readable range, unique by content."""
    stems = sorted(n.rsplit("/", 1)[-1].removesuffix(".pdf") for n in members)
    digest = hashlib.sha256(packed).hexdigest()[:16]
    return f"invoices/{series_id}/archive/{stems[0]}--{stems[-1]}-{digest}.zip"


def store_archive(series_id: str, members: dict[str, bytes]) -> dict[str, Stored]:
    """Write ``members`` as one archive object (once); what is stored for each member.

    When the object already existed (same content, same name) the stored bytes win, as for any object.
    """
    packed = pack(members)
    name = archive_name(series_id, members, packed)
    stored = put_once(name, packed, content_type="application/zip", content_addressed=True)
    data = packed
    if not stored.created and stored.sha256 != sha256(packed):
        data = _download(stored.uri)
    out: dict[str, Stored] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for member in members:
            kept = z.read(member)
            out[member] = Stored(f"{stored.uri}{MEMBER_SEP}{member}", sha256(kept), len(kept), stored.created)
    return out


@dataclass
class _Group:
    series_id: str
    members: dict[str, bytes] = field(default_factory=dict)
    sealed: bool = False
    done: bool = False
    stored: dict[str, Stored] = field(default_factory=dict)
    error: BaseException | None = None


class ArchiveWriter:
    """Group commit of documents into archive objects, one group per series at a time, per process.

    The first document of a series to arrive leads its group: it waits until no other document joined for
    ``quiet_s`` (at most ``max_wait_s``, or until ``max_members``), seals the group, writes it and wakes
    the members. Members arriving meanwhile open the next group. One process serves many concurrent
    requests, so a numbering batch handed out at once lands in one archive. A trickle of isolated
    finalizations is not held back to wait for company (an isolated one waits ``quiet_s``): measured on
    the local stack, whose emulator pushes about one message at a time, a 0.5 s quiet period grouped
    only 1.2-1.9 documents per object and cut throughput by half, so the default only groups what
    arrives together.
    """

    def __init__(self, *, quiet_s: float = 0.05, max_wait_s: float = 0.5, max_members: int = 500) -> None:
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self.max_members = max_members
        self._cond = threading.Condition()
        self._open: dict[str, _Group] = {}
        self.objects_written = 0  # benchmarks and tests read it

    def store(self, series_id: str, name: str, data: bytes) -> Stored:
        """Archive one document; returns once the object holding it is stored (raises if that failed)."""
        with self._cond:
            group = self._open.get(series_id)
            lead = group is None
            if group is None:
                group = self._open[series_id] = _Group(series_id)
            group.members[name] = data
            if len(group.members) >= self.max_members:
                self._seal(group)
            self._cond.notify_all()
        if lead:
            self._lead(group)
        with self._cond:
            while not group.done:
                self._cond.wait()
        if group.error is not None:
            raise group.error
        return group.stored[name]

    def _seal(self, group: _Group) -> None:
        group.sealed = True
        if self._open.get(group.series_id) is group:
            del self._open[group.series_id]

    def _lead(self, group: _Group) -> None:
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            seen = -1
            while not group.sealed and len(group.members) != seen and time.monotonic() < deadline:
                seen = len(group.members)
                self._cond.wait(timeout=min(self.quiet_s, max(0.0, deadline - time.monotonic())))
            self._seal(group)
            members = dict(group.members)
        try:
            stored = store_archive(group.series_id, members)
        except BaseException as exc:  # every member fails with it and is redelivered
            with self._cond:
                group.error, group.done = exc, True
                self._cond.notify_all()
            return
        with self._cond:
            group.stored, group.done = stored, True
            self.objects_written += 1
            self._cond.notify_all()
