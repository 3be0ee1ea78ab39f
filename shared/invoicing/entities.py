"""The legal entities that issue invoices, and their numbering series.

``RenewalDue.seller_entity`` names one of these. The seller's identity printed on the document and the
series it numbers in are legal facts, so they are reviewed data here rather than free-form input.
``INVOICE_SELLERS_JSON`` may add or override entities (same fields, JSON object keyed by entity id)
for a deployment that issues under other entities.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from shared.config import invoice_sellers_json
from shared.domain.numbering import DocType, Reset, SeriesDef


class UnknownSeller(LookupError):
    """The request names a legal entity this deployment does not invoice for."""


@dataclass(frozen=True, slots=True)
class Seller:
    entity: str
    name: str
    country: str
    vat_id: str | None
    address_lines: tuple[str, ...]
    invoice_prefix: str = "INV"
    credit_note_prefix: str = "CN"
    reset: Reset = "yearly"

    def series(self, doc_type: DocType) -> SeriesDef:
        prefix = self.invoice_prefix if doc_type == "invoice" else self.credit_note_prefix
        return SeriesDef(entity=self.entity, doc_type=doc_type, prefix=prefix, reset=self.reset)


_BUILTIN: dict[str, Seller] = {
    s.entity: s
    for s in (
        Seller("acme-fr", "Acme SAS", "FR", "FR40303265045", ("1 rue de la Paix", "75002 Paris", "France")),
        Seller("acme-de", "Acme GmbH", "DE", "DE129273398", ("Unter den Linden 1", "10117 Berlin", "Germany")),
        Seller(
            "acme-jp",
            "Acme KK",
            "JP",
            "T1234567890123",
            ("1-1 Marunouchi, Chiyoda-ku", "Tokyo 100-0005", "Japan"),
            invoice_prefix="JP",
            credit_note_prefix="JPCN",
            reset="never",
        ),
    )
}


@functools.cache
def _sellers(extra: str) -> dict[str, Seller]:
    out = dict(_BUILTIN)
    if extra:
        for entity, raw in json.loads(extra).items():
            fields = {**raw, "entity": entity, "address_lines": tuple(raw.get("address_lines", ()))}
            out[entity] = Seller(**fields)
    return out


def seller(entity: str) -> Seller:
    try:
        return _sellers(invoice_sellers_json())[entity]
    except KeyError:
        raise UnknownSeller(f"no legal entity {entity!r} is configured to issue invoices") from None
