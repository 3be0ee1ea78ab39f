"""The aggregator's group-commit window, without I/O: concurrent parts share one run, each waiter returns only
after that run and gets its own result, a failed run fails every waiter of its window, the cap bounds a window."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.metering.window import Window

WAIT_S = 30.0  # only a guard against a hung test, never an assertion on time


class Runner:
    """Records each run's parts; can block a run on a gate and fail the next runs."""

    def __init__(self, gate: threading.Event | None = None, fail: int = 0) -> None:
        self.runs: list[list[str]] = []
        self.gate, self.fail = gate, fail
        self.started = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, parts: Sequence[list[str]]) -> list[str]:
        with self.lock:
            self.runs.append([p[0] for p in parts])
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT_S)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("commit lost")
        return [f"done:{p[0]}" for p in parts]


def _window(run: Runner, *, cap: int, coalesce_s: float = WAIT_S) -> Window[list[str], str]:
    return Window(run=run, size=len, coalesce_s=lambda: coalesce_s, cap=lambda: cap)


def _submit_all(w: Window[list[str], str], parts: list[list[str]]) -> tuple[list[threading.Thread], dict[str, object]]:
    out: dict[str, object] = {}

    def go(part: list[str]) -> None:
        try:
            out[part[0]] = w.submit(part)
        except Exception as exc:  # what each waiter saw
            out[part[0]] = exc

    threads = [threading.Thread(target=go, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    return threads, out


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(WAIT_S)
        assert not t.is_alive()


def test_concurrent_parts_share_one_run_and_every_waiter_returns_only_after_it() -> None:
    gate = threading.Event()
    run = Runner(gate)
    w = _window(run, cap=8)  # the window closes when the 8 events are queued (not on a timer)
    parts = [[f"p{i}", "x"] for i in range(4)]
    threads, out = _submit_all(w, parts)
    assert run.started.wait(WAIT_S)
    time.sleep(0.2)  # give a wrongly early waiter the chance to return
    assert out == {}
    assert all(t.is_alive() for t in threads)
    gate.set()
    _join(threads)
    assert len(run.runs) == 1
    assert sorted(run.runs[0]) == [f"p{i}" for i in range(4)]
    assert out == {f"p{i}": f"done:p{i}" for i in range(4)}  # each waiter its own result
    assert (w.stats.windows, w.stats.parts, w.stats.failed) == (1, 4, 0)


def test_a_failed_run_fails_every_waiter_of_its_window_and_the_next_window_runs() -> None:
    run = Runner(fail=1)
    coalesce = [WAIT_S]
    w: Window[list[str], str] = Window(run=run, size=len, coalesce_s=lambda: coalesce[0], cap=lambda: 6)
    threads, out = _submit_all(w, [["a", "x"], ["b", "x"], ["c", "x"]])  # the window closes on the cap
    _join(threads)
    coalesce[0] = 0.0
    assert len(run.runs) == 1
    assert all(isinstance(v, ConnectionError) for v in out.values())
    assert len(out) == 3
    assert w.submit(["a", "x"]) == "done:a"  # the redelivery: leadership was released
    assert w.stats.failed == 1


def test_the_cap_bounds_a_window_and_the_leaders_part_is_always_in_its_own() -> None:
    gate = threading.Event()
    run = Runner(gate)
    w = _window(run, cap=4, coalesce_s=0.01)
    first, out = _submit_all(w, [["lead", "x", "x", "x"]])  # 4 events: its window closes at once, alone
    assert run.started.wait(WAIT_S)
    rest, out2 = _submit_all(w, [[f"q{i}", "x"] for i in range(4)] + [["big", *"xxxxxxx"]])
    gate.set()
    _join(first + rest)
    assert run.runs[0] == ["lead"]
    sizes = {"big": 8} | {f"q{i}": 2 for i in range(4)}
    for r in run.runs[1:]:
        assert sum(sizes[p] for p in r) <= 4 or r == ["big"]  # a part larger than the cap runs alone
    assert sorted(p for r in run.runs for p in r) == sorted(["lead", "big", *[f"q{i}" for i in range(4)]])
    assert {**out, **out2} == {p: f"done:{p}" for p in ["lead", "big", *[f"q{i}" for i in range(4)]]}


def test_a_lone_delivery_is_its_own_window() -> None:
    run = Runner()
    w = _window(run, cap=10_000, coalesce_s=0.0)
    assert [w.submit([p]) for p in "abc"] == ["done:a", "done:b", "done:c"]
    assert run.runs == [["a"], ["b"], ["c"]]


def test_a_run_answering_the_wrong_number_of_results_fails_its_waiters() -> None:
    w: Window[list[str], str] = Window(run=lambda parts: [], size=len, coalesce_s=lambda: 0.0)
    with pytest.raises(RuntimeError, match="0 results for 1 parts"):
        w.submit(["a"])


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=12),
    cap=st.integers(1, 12),
    fail=st.integers(0, 2),
)
def test_every_part_is_answered_once_by_exactly_one_run_within_the_cap(sizes: list[int], cap: int, fail: int) -> None:
    run = Runner(fail=fail)
    w = _window(run, cap=cap, coalesce_s=0.001)
    parts = [[f"p{i}", *["x"] * (n - 1)] for i, n in enumerate(sizes)]
    threads, out = _submit_all(w, parts)
    _join(threads)
    ran = [p for r in run.runs for p in r]
    assert sorted(ran) == sorted(p[0] for p in parts)  # each part in exactly one run
    by_name = {p[0]: len(p) for p in parts}
    for r in run.runs:
        assert len(r) == 1 or sum(by_name[p] for p in r) <= cap
    failed = {p for r in run.runs[:fail] for p in r}
    for name, got in out.items():  # a waiter fails exactly when its run failed
        assert isinstance(got, ConnectionError) if name in failed else got == f"done:{name}"
    assert len(out) == len(parts)


def test_an_idle_eager_window_runs_a_lone_delivery_at_once_and_coalesces_a_burst() -> None:
    """The aggregator's window: a delivery reaching an idle instance does not wait the window (hour-long here:
    waiting would hang the join guard); deliveries arriving right after it are busy and share one run."""
    run = Runner()
    w: Window[list[str], str] = Window(
        run=run, size=len, coalesce_s=lambda: 3600.0, cap=lambda: 4, eager_when_idle=True
    )
    threads, out = _submit_all(w, [["lone", "x"]])
    _join(threads)
    assert out == {"lone": "done:lone"}
    threads, out = _submit_all(w, [["a", "x"], ["b", "x"]])  # within the window's length of "lone": busy
    _join(threads)  # the window closes on the cap (4 items), not on a timer
    assert sorted(map(sorted, run.runs)) == [["a", "b"], ["lone"]]
    assert out == {"a": "done:a", "b": "done:b"}


def test_a_window_without_eager_waits_even_for_a_lone_delivery() -> None:
    run = Runner()
    w = _window(run, cap=2, coalesce_s=3600.0)
    threads, out = _submit_all(w, [["one", "x"]])  # fills the cap alone: runs on the cap, not at once
    _join(threads)
    assert run.runs == [["one"]]
    threads, out = _submit_all(w, [["solo"]])
    time.sleep(0.2)  # would have run at once if eager
    assert run.runs == [["one"]]
    assert out == {}
    threads2, _ = _submit_all(w, [["late"]])  # completes the cap: both run together
    _join(threads + threads2)
    assert sorted(run.runs[-1]) == ["late", "solo"]
