"""The Flask glue: whole bodies despite short reads, and retry hints on 409 / 503."""

from __future__ import annotations

import io

from shared.webhooks.http import _read, _response
from shared.webhooks.service import Answer, reject


class Trickle(io.RawIOBase):
    """A socket-like stream that hands out at most 7 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.buf.read(min(7, size if size >= 0 else 7))


def test_short_reads_still_give_the_whole_body_up_to_the_limit() -> None:
    data = bytes(range(256)) * 100
    assert _read(Trickle(data), 1_000_000) == data
    assert _read(Trickle(data), 100) == data[:100]


def test_retry_after_on_in_progress(env_project: str) -> None:
    resp = _response(reject(409, "in_progress", "retry later"))
    assert (resp.status_code, resp.headers["Retry-After"]) == (409, "5")
    ok = _response(Answer(200, "[accepted]", "text/plain"))
    assert (ok.status_code, ok.get_data(as_text=True), ok.mimetype) == (200, "[accepted]", "text/plain")
