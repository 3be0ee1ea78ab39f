"""Settlement reconciliation: settlement lines matched against our payment facts, exceptions explained,
payouts closed and everything posted to the ledger (:mod:`shared.ledger`).

* :mod:`.matching`: the pure rules (one payment's facts against its lines -> matched or findings);
* :mod:`.repository` / :mod:`.service`: idempotent intake of batches, facts and invoice events on Firestore;
* :mod:`.reports`: open exceptions, a payout with its lines, the daily report;
* :mod:`.synthetic`: synthetic settlement days with injected anomalies (tests, benchmark, demo).
"""
