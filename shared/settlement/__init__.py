"""Settlement intake: what each PSP says it settled and paid out, as normalised lines.

One module per PSP under :mod:`shared.settlement.adapters` turns that PSP's real source (report file or
API page) into :class:`~shared.settlement.lines.SettlementLine` values; reconciliation matches them
against our canonical payment facts and posts them to the ledger.
"""
