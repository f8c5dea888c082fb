"""Warm-up: at least warmup_ms, then on until two bursts agree, at most its cap.

A fake clock drives the decisions exactly (each call advances it by a scripted per-call
time), so what is tested is the rule, not this box's load; one real call at the end runs it
on real torch."""

from __future__ import annotations

import types

import pytest
import torch

from flashtui.engine import timing


class Clock:
    """perf_counter in seconds, moved only by the calls it times."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def perf_counter(self) -> float:
        return self.now_s


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=fake.perf_counter, time=lambda: 0.0))
    return fake


def _calls(clock: Clock, per_call_ms):
    """fn() whose n-th call takes per_call_ms(n) of fake time."""
    count = [0]

    def fn():
        count[0] += 1
        clock.now_s += per_call_ms(count[0]) / 1e3
    return fn, count


def test_a_steady_call_stops_soon_after_the_floor(clock):
    fn, count = _calls(clock, lambda n: 0.02)
    calls, last_ms, steady = timing.warm_up(fn, "cpu", warmup_ms=25.0)
    assert steady is True
    assert last_ms == pytest.approx(0.02)
    assert 25.0 <= clock.now_s * 1e3 <= 25.0 + timing.WARMUP_BURST_MS  # one burst past the floor at most
    assert calls == count[0]


def test_a_call_still_speeding_up_warms_on_until_it_settles(clock):
    # Clocks ramping: per-call time falls 5% every 40 calls for the first 2000 calls (~35 ms),
    # then holds; the floor (25 ms) passes while it is still falling.
    fn, _ = _calls(clock, lambda n: 0.02 * 0.95 ** min(n // 40, 50))
    calls, _, steady = timing.warm_up(fn, "cpu", warmup_ms=25.0)
    assert steady is True
    assert calls > 2000
    assert clock.now_s * 1e3 < timing.WARMUP_CAP_MS


def test_a_call_that_never_settles_stops_at_the_cap_and_says_so(clock):
    fn, _ = _calls(clock, lambda n: 0.05 if (n // 200) % 2 else 0.02)  # alternates 2.5x
    _, _, steady = timing.warm_up(fn, "cpu", warmup_ms=25.0)
    assert steady is False
    assert timing.WARMUP_CAP_MS <= clock.now_s * 1e3 <= timing.WARMUP_CAP_MS + timing.WARMUP_BURST_MS


def test_the_floor_is_kept_even_when_steady_at_once_and_a_long_floor_has_no_extra_cap(clock):
    fn, _ = _calls(clock, lambda n: 1.0)
    timing.warm_up(fn, "cpu", warmup_ms=250.0)
    # steady from the third call on, but 250 ms were asked for: no less, and (250 > cap) no more
    assert 250.0 <= clock.now_s * 1e3 <= 250.0 + timing.WARMUP_BURST_MS


def test_a_slow_call_needs_three_calls_and_the_first_is_never_compared(clock):
    # The first call pays a lazy set-up (30 ms, past the floor); the second alone proves
    # nothing; the second and third agree: steady after three calls.
    fn, _ = _calls(clock, lambda n: 30.0 if n == 1 else 13.0)
    calls, last_ms, steady = timing.warm_up(fn, "cpu", warmup_ms=25.0)
    assert (calls, steady) == (3, True) and last_ms == pytest.approx(13.0)


def test_short_bursts_are_not_trusted_to_agree():
    # Two 1 ms bursts that agree are timer noise, not evidence of a steady state.
    assert not timing.is_steady([(0.5, 0.5), (0.01, 1.0), (0.01, 1.0)])
    assert timing.is_steady([(0.5, 0.5), (0.01, 5.0), (0.0101, 10.1)])
    assert not timing.is_steady([(0.5, 0.5), (0.01, 5.0), (0.0103, 10.3)])  # 3% apart
    assert not timing.is_steady([(0.01, 5.0), (0.01, 5.0)])  # the first burst never counts


def test_time_calls_records_how_its_warm_up_ended_on_real_torch():
    a = torch.randn(64, 64)
    t = timing.time_calls(lambda: a @ a, "cpu", reps=5, warmup_ms=5.0)
    assert t.warmup_steady in (True, False)
    assert t.warmup_s is not None and t.warmup_s >= 0.005
    assert t.warmup_s <= max(5.0, timing.WARMUP_CAP_MS) / 1e3 + 0.5  # the cap, plus one burst and slack


def test_reports_say_the_warm_up_as_it_ran():
    from flashtui.core.results import Cell
    from flashtui.reports.cells import warmup_label

    old = Cell(backend="standard", seq=128, dtype="fp32", status="ok")
    new = [Cell(backend=b, seq=128, dtype="fp32", status="ok", extra={"warmup_ms": ms, "warmup_steady": True})
           for b, ms in (("standard", 26.4), ("flex", 41.2))]
    assert warmup_label({"warmup_ms": 100.0}, [old]) == "warm-up 100 ms"  # a session from before
    assert warmup_label({"warmup_ms": 25.0}, new) == "warm-up >=25 ms until steady (26-41 ms)"
    assert warmup_label({}, new) is None
