"""The issues' targets are judged on figures of one run: ratios of two servers measured side
by side, never a figure from elsewhere; a FAILED run meets no target."""

from __future__ import annotations

from bench.goals import Ceiling, Figure, Goal, judge
from bench.plan import BARE, BARE_WORKERS, MEMORY, NCHAN, REDIS, REDIS_WORKERS
from bench.results import RunResult

_OURS = Figure(MEMORY, "fanout-seq1", "fanout_sustained")
_THEIRS = Figure(NCHAN, "fanout-seq1", "fanout_sustained")
_TWICE = Goal(15, "memory ≥ 2x Nchan", _OURS, 2, _THEIRS)


def _runs(server: str, *values: float) -> list[RunResult]:
    return [RunResult("fanout-seq1", server, {"fanout_sustained": value}) for value in values]


def test_a_ratio_target_divides_the_medians_of_the_same_run() -> None:
    runs = _runs(MEMORY, 150, 210, 400) + _runs(NCHAN, 100, 90, 110)
    verdict = judge(_TWICE, runs)
    assert (verdict.measured, verdict.met) == ("2.10x", "yes")


def test_a_ratio_below_its_bound_is_not_met() -> None:
    verdict = judge(_TWICE, _runs(MEMORY, 190) + _runs(NCHAN, 100))
    assert (verdict.measured, verdict.met) == ("1.90x", "**no**")


def test_an_upper_bound_is_met_at_or_below_it() -> None:
    goal = Goal(15, "≤ 5 ms", Figure(MEMORY, "fanout-seq1", "post_p99_ms"), 5, at_most=True,
                unit="ms", digits=1)  # fmt: skip
    runs = [RunResult("fanout-seq1", MEMORY, {"post_p99_ms": 5.0})]
    assert (judge(goal, runs).measured, judge(goal, runs).met) == ("5.0 ms", "yes")


def test_a_target_whose_reference_did_not_run_is_not_measured() -> None:
    assert judge(_TWICE, _runs(MEMORY, 300)).met == "not measured"


def test_a_failed_run_meets_no_target() -> None:
    runs = _runs(MEMORY, 300, 300) + _runs(NCHAN, 100)
    runs[0].add_anomalies({"gaps": 1})
    assert judge(_TWICE, runs).met == "**no** (a FAILED run)"


def test_a_target_shows_the_same_ratio_of_its_reference_servers_beside_its_own() -> None:
    def eight(server: str) -> Figure:
        return Figure(server, "publish", "publish_8")

    ceiling = Ceiling("bare 2/1", eight(BARE_WORKERS), eight(BARE))
    goal = Goal(13, "2 workers ≥ 1.6x one", eight(REDIS_WORKERS), 1.6, eight(REDIS),
                ceiling=ceiling)  # fmt: skip
    runs = [
        RunResult("publish", server, {"publish_8": value})
        for server, value in [(REDIS, 100), (REDIS_WORKERS, 110), (BARE, 100), (BARE_WORKERS, 125)]
    ]
    verdict = judge(goal, runs)
    assert (verdict.measured, verdict.met) == ("1.10x (bare 2/1: 1.25x)", "**no**")
