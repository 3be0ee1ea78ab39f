"""Threshold crossing (progressive billing), pure: each threshold multiple is billed at most once, in order, for
any event order and batching, and what was billed never exceeds the usage amount."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.meters import threshold_crossed


def _run(amounts: list[int], cuts: list[int], threshold: int) -> tuple[list[int], list[int], int]:
    """Fold ``amounts`` (one per event) in batches cut at ``cuts``; after each batch, bill a crossing like the
    aggregator does: the indices billed, the invoice amounts (usage to date minus billed) and the final total."""
    bounds = sorted({0, len(amounts), *(c % (len(amounts) + 1) for c in cuts)})
    total, billed, index, indices, invoices = 0, 0, 0, [], []
    for lo, hi in itertools.pairwise(bounds):
        total += sum(amounts[lo:hi])
        n = threshold_crossed(total, threshold, index)
        if n is not None:
            indices.append(n)
            invoices.append(total - billed)
            billed, index = total, n
    return indices, invoices, total


@given(
    st.lists(st.integers(0, 5_000), min_size=1, max_size=60),
    st.lists(st.integers(0, 10_000), max_size=20),
    st.integers(1, 20_000),
    st.randoms(use_true_random=False),
)
def test_each_threshold_is_billed_once_in_order_for_any_order_and_batching(
    amounts: list[int], cuts: list[int], threshold: int, rnd: object
) -> None:
    shuffled = list(amounts)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    indices, invoices, total = _run(shuffled, cuts, threshold)
    assert indices == sorted(set(indices))  # strictly increasing: no index twice
    assert (indices[-1] if indices else 0) == total // threshold  # the last reached multiple is billed, whatever
    assert all(i > 0 for i in invoices)
    assert sum(invoices) <= total  # never more than the usage: the final invoice's credit is never negative
    assert sum(invoices) >= (indices[-1] * threshold if indices else 0)  # billed up to the crossing
    one_batch = _run(amounts, [], threshold)  # the same events in one batch: the same final index
    assert (one_batch[0][-1:] or [0]) == [total // threshold]


def test_no_crossing_below_the_next_multiple_or_for_nothing() -> None:
    assert threshold_crossed(999, 1000, 0) is None
    assert threshold_crossed(1000, 1000, 0) == 1
    assert threshold_crossed(3500, 1000, 1) == 3  # a jump over several multiples: one invoice
    assert threshold_crossed(3500, 1000, 3) is None
    assert threshold_crossed(0, 1000, 0) is None
    assert threshold_crossed(5000, 0, 0) is None
