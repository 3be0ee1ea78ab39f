"""The double-entry ledger: a pure journal (:mod:`.journal`), the entries each business fact posts
(:mod:`.postings`) and its append-only Firestore store (:mod:`.store`). Balances are always derived from
the entries, never stored or edited."""
