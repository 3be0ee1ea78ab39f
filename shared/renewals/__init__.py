"""Subscription renewals: the planner (ticks -> RenewalDue), the collector (InvoiceFinalized -> PSP
charge -> payment fact) and the outcome handler (payment facts -> period / dunning / status)."""
