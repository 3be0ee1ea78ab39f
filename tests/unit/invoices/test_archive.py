"""The archive format (pure): the same documents always pack to the same bytes, which name the object."""

from __future__ import annotations

import io
import json
import zipfile

from hypothesis import given
from hypothesis import strategies as st

from shared.invoicing import pdf, storage

members = st.dictionaries(
    st.integers(1, 999_999).map(lambda n: f"invoices/acme-fr.INV.2026/INV-2026-{n:06d}.pdf"),
    st.binary(max_size=64),
    min_size=1,
    max_size=8,
)


@given(members)
def test_pack_is_deterministic_and_self_describing(docs: dict[str, bytes]) -> None:
    packed = storage.pack(docs)
    assert storage.pack(dict(reversed(list(docs.items())))) == packed  # order of arrival does not matter
    with zipfile.ZipFile(io.BytesIO(packed)) as z:
        assert {n: z.read(n) for n in docs} == docs
        manifest = json.loads(z.read(storage.MANIFEST))
    assert manifest == {n: {"sha256": pdf.sha256(d), "size": len(d)} for n, d in docs.items()}
    name = storage.archive_name("acme-fr.INV.2026", docs, packed)
    stems = sorted(n.rsplit("/", 1)[1].removesuffix(".pdf") for n in docs)
    assert name.startswith(f"invoices/acme-fr.INV.2026/archive/{stems[0]}--{stems[-1]}-")
    assert name == storage.archive_name("acme-fr.INV.2026", docs, storage.pack(docs))
