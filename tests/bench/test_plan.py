"""What a bench run does, as the command line chooses it: scenarios and runs of each."""

from __future__ import annotations

from bench.cli import _parser, _plan
from bench.plan import FANOUT_PATTERNS, Plan


def _plan_for(*argv: str) -> Plan:
    return _plan(_parser().parse_args(list(argv)), nofile=1 << 20)


def test_fanout_on_the_command_line_means_every_producer_pattern() -> None:
    plan = _plan_for("--scenarios", "publish,fanout")
    assert plan.scenarios == (*FANOUT_PATTERNS, "publish")


def test_a_full_run_measures_the_pipelined_fanout_and_idle_memory_once() -> None:
    plan = _plan_for()
    assert {name: plan.runs_of(name) for name in plan.scenarios} == {
        "fanout-seq1": 3,
        "fanout-seq4": 3,
        "fanout-pipelined": 1,
        "replay": 3,
        "idle": 1,
        "publish": 3,
    }


def test_runs_given_on_the_command_line_apply_to_every_scenario() -> None:
    plan = _plan_for("--runs", "2")
    assert {plan.runs_of(name) for name in plan.scenarios} == {2}
