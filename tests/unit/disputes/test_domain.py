"""The dispute state machine: no delivery order or duplicate regresses a dispute; reasons; deadline rule."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import disputes as dom
from shared.invoicing.payments import dispute_fields

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
S = dom.Status


def obs(status: dom.Status, minutes: int, **kw: object) -> dom.Observation:
    return dom.Observation(status=status, at=T0 + dt.timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


observations = st.builds(
    dom.Observation,
    status=st.sampled_from(list(S)),
    at=st.integers(0, 10_000).map(lambda m: T0 + dt.timedelta(minutes=m)),
    stage=st.sampled_from(list(dom.Stage)),
    amount=st.none() | st.integers(1, 10**9),
    currency=st.just("EUR"),
    reason_code=st.none() | st.sampled_from(["10.4", "4853", "13.1"]),
    reason=st.none() | st.sampled_from(list(dom.Reason)),
    due_by=st.none() | st.integers(0, 20_000).map(lambda m: T0 + dt.timedelta(minutes=m)),
)


@settings(max_examples=300)
@given(st.lists(observations, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_any_order_and_any_duplicates_give_the_same_dispute(items: list[dom.Observation], rnd: object) -> None:
    shuffled = list(items) + list(items[: len(items) // 2])  # duplicates (redeliveries)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert dom.fold(shuffled) == dom.fold(items)


@settings(max_examples=300)
@given(st.lists(observations, min_size=1, max_size=8))
def test_a_dispute_never_regresses(items: list[dom.Observation]) -> None:
    d = dom.start(items[0])
    for o in items[1:]:
        after = d.apply(o)
        assert after.key >= d.key
        assert dict(after.field_keys).keys() >= dict(d.field_keys).keys()
        d = after
    assert dom.from_doc(dom.to_doc(d)) == d


def test_every_order_of_a_real_lifecycle_ends_won() -> None:
    life = [
        obs(S.OPENED, 0, amount=5000, currency="EUR", due_by=T0 + dt.timedelta(days=7)),
        obs(S.NEEDS_RESPONSE, 1, reason=dom.Reason.FRAUDULENT, reason_code="10.4"),
        obs(S.UNDER_REVIEW, 2),
        obs(S.WON, 3),
    ]
    for perm in itertools.permutations(life):
        d = dom.fold(perm)
        assert (d.status, d.amount, d.reason, d.due_by) == (S.WON, 5000, dom.Reason.FRAUDULENT, life[0].due_by)
        assert d.outcome == "won"
        assert not d.open


def test_a_late_needs_response_does_not_reopen_a_won_dispute() -> None:
    d = dom.fold([obs(S.OPENED, 0), obs(S.WON, 5)]).apply(obs(S.NEEDS_RESPONSE, 1))
    assert d.status is S.WON


def test_pre_arbitration_reopens_after_the_first_outcome_and_its_outcome_wins() -> None:
    d = dom.fold([obs(S.WON, 5), obs(S.PRE_ARBITRATION, 9)])
    assert (d.status, d.stage, d.open) == (S.PRE_ARBITRATION, dom.Stage.PRE_ARBITRATION, True)
    assert dom.fold([obs(S.LOST, 10, stage=dom.Stage.PRE_ARBITRATION), obs(S.WON, 5)]).outcome == "lost"


def test_of_two_outcomes_the_later_one_holds() -> None:
    """Adyen: the debit (lost) then a reversal (won)."""
    assert dom.fold([obs(S.WON, 9), obs(S.LOST, 4)]).status is S.WON
    assert dom.fold([obs(S.LOST, 9), obs(S.WON, 4)]).status is S.LOST


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        dom.Observation(status=S.OPENED, at=dt.datetime(2026, 3, 1))


@pytest.mark.parametrize(
    ("psp", "candidates", "expected"),
    [
        ("stripe", ("product_not_received",), "product_not_received"),
        ("stripe", ("debit_not_authorized",), "fraudulent"),
        ("adyen", (" 4853", "Not as described"), "product_unacceptable"),
        ("adyen", (None, "Fraud"), "fraudulent"),
        ("adyen", ("10.4",), "fraudulent"),
        ("paypal", ("MERCHANDISE_OR_SERVICE_NOT_RECEIVED",), "product_not_received"),
        ("paypal", ("CANCELED_RECURRING_BILLING",), "subscription_canceled"),
        ("braintree", ("not_recognized",), "unrecognized"),
        ("braintree", ("product_unsatisfactory",), "product_unacceptable"),
        ("checkout", ("credit_not_issued", "13.6"), "credit_not_processed"),
        ("checkout", ("duplicate",), "duplicate"),
        ("gocardless", ("authorisation_disputed",), "unrecognized"),
        ("paypal", ("INCORRECT_AMOUNT",), "general"),
        ("stripe", (None,), "general"),
    ],
)
def test_reasons_are_normalised(psp: str, candidates: tuple[str | None, ...], expected: str) -> None:
    assert dom.normalise_reason(psp, *candidates).value == expected


@given(st.integers(-200 * 60, 200 * 60))
def test_alert_rule(minutes_before_due: int) -> None:
    due = T0 + dt.timedelta(days=10)
    now = due - dt.timedelta(minutes=minutes_before_due)
    got = dom.alert_due(due, now)
    if minutes_before_due <= 0 or minutes_before_due > 72 * 60:
        assert got is None
    elif minutes_before_due <= 24 * 60:
        assert got == 24
    else:
        assert got == 72


def test_the_invoice_flag_is_set_while_open_and_cleared_by_the_outcome() -> None:
    from shared.events.payments import DisputeLost, DisputeWon
    from tests.fixtures.invoices import disputed

    opened = disputed("inv_1", "dp_1")
    common = opened.model_dump(exclude={"psp_event_id"})
    won = DisputeWon(**common)
    lost = DisputeLost(**{**common, "dispute_id": "dp_2"})
    d: dict[str, object] = {}
    d.update(dispute_fields(d, opened) or {})
    assert d["disputed"] is True
    d.update(dispute_fields(d, DisputeWon(**{**common, "dispute_id": "dp_2"})) or {})  # another dispute's outcome
    assert d["disputed"] is True
    d.update(dispute_fields(d, won) or {})
    assert (d["disputed"], d["disputes"]) == (False, [])
    assert dispute_fields(d, opened) is None, "a late dispute.opened does not flag the invoice again"
    d2: dict[str, object] = {}
    d2.update(dispute_fields(d2, lost) or {})
    assert (d2["disputed"], d2["charged_back"]) == (False, True)
