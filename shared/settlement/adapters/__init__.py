"""One module per PSP turning its real settlement source into :class:`~shared.settlement.lines.SettlementBatch`.

File sources expose ``parse_report(data, *, account, source)``; API sources ``pull(client, *, account, since,
until)`` with ``client(account)`` building the official SDK client from settings. Malformed input raises
:class:`~shared.settlement.adapters.common.SettlementFormatError`; nothing is ever returned half-parsed.
"""

from shared.settlement.adapters.common import SettlementFormatError

__all__ = ["SettlementFormatError"]
