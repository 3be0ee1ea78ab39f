"""The default scorer: a few explainable rules, each naming its reason.

Why rules first: they need no training data, their reasons can be shown to an operator reviewing a case,
and the decisions they record (with their features) are the data a model can later be trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.risk.base import SEVERITY, Decision, Features, Verdict


@dataclass(frozen=True, slots=True)
class Thresholds:
    velocity_review: int = 5  # more attempts than this in 24 h (per customer, per payment method): a human looks
    velocity_block: int = 20
    declines_review: int = 2  # declines of the customer in 7 days (more than)
    declines_block: int = 5
    spike_review: int = 3  # amount above this multiple of the customer's largest paid amount (same currency)
    spike_block: int = 10


@dataclass(frozen=True, slots=True)
class RulesScorer:
    thresholds: Thresholds = Thresholds()
    name: str = "rules"
    inline: bool = True  # pure CPU over a bounded profile: run on the caller's thread (see shared.risk.step)

    def score(self, f: Features) -> Decision:
        t = self.thresholds
        found: list[tuple[Verdict, str]] = []

        def rule(value: int, review: int, block: int, reason: str) -> None:
            if value > block:
                found.append(("block", reason))
            elif value > review:
                found.append(("review", reason))

        rule(f.customer_attempts_24h, t.velocity_review, t.velocity_block, "customer_velocity")
        rule(f.method_attempts_24h, t.velocity_review, t.velocity_block, "method_velocity")
        rule(f.customer_declines_7d, t.declines_review, t.declines_block, "decline_burst")
        if f.billing_country and f.method_country and f.billing_country != f.method_country:
            found.append(("review", "country_mismatch"))
        if f.customer_paid_count and f.customer_max_paid_minor > 0:
            if f.amount_minor > t.spike_block * f.customer_max_paid_minor:
                found.append(("block", "amount_spike"))
            elif f.amount_minor > t.spike_review * f.customer_max_paid_minor:
                found.append(("review", "amount_spike"))
        if not found:
            return Decision("allow", (), self.name)
        verdict = max((v for v, _ in found), key=SEVERITY.__getitem__)
        return Decision(verdict, tuple(r for _, r in found), self.name)
