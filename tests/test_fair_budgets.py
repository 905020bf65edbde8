"""Fair comparisons: distinct-evaluation budgets, local search, noisy tables, corrected tests, policy share."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch

from rlnas.benchmarks import HiddenTargetBenchmark, TabularBenchmark
from rlnas.controllers import (
    Controller,
    ENASController,
    GridController,
    LocalSearchController,
    RandomController,
    TPEController,
)
from rlnas.controllers.elite import EliteMemory
from rlnas.rewards import MetricReward
from rlnas.search.budget import BudgetSearch
from rlnas.spaces import CategoricalSpace
from tests.conftest import ROOT, MatchEvaluator, toy_space

sys.path.insert(0, str(ROOT))
from tools._common import load_config  # noqa: E402
from tools.compare_controllers import ALL, correct, holm, run_benchmark  # noqa: E402

SEEDS_TABLE = ROOT.parent / "shared" / "benchmarks" / "nb201_cifar10_valid_seeds.csv"


class Repeater(Controller):
    """Proposes each batch twice over: every architecture once new, once again."""

    def propose(self, n: int) -> list:
        half = [self.sample_allowed() for _ in range(max(n // 2, 1))]
        return (half + half)[:n]


def counting_search(controller: Controller, evaluations: int, **kwargs) -> tuple[BudgetSearch, MatchEvaluator]:
    space = controller.space
    evaluator = MatchEvaluator(space.sample(np.random.default_rng(99)))
    return BudgetSearch(space, evaluator, controller, MetricReward("match"), evaluations, 10, **kwargs), evaluator


def test_repeats_neither_cost_nor_count():
    search, evaluator = counting_search(Repeater(toy_space(), seed=0), 40)
    result = search.run()
    archs = [row["arch"] for row in search.history]
    assert len(archs) == len(set(archs)) == len(result.rewards) == 40
    assert evaluator.calls == 40  # the repeats were answered from the run's cache
    assert result.distinct == 40 and result.proposals >= 75  # about half the proposals were repeats


@pytest.mark.parametrize("name", ALL)
def test_every_controller_spends_its_budget_on_distinct_architectures(name):
    cfg = load_config(["+benchmark=toy", f"controller={name}", "seed=0", "benchmark.evaluations=60"])
    from rlnas.search.budget import build_budget_search

    search = build_budget_search(cfg, None, progress=False)
    result = search.run()
    archs = [row["arch"] for row in search.history]
    assert len(archs) == len(set(archs)) == result.distinct == 60
    assert search.evaluator.calls == 60
    assert result.proposals >= 60


def test_a_space_smaller_than_the_budget_stops_instead_of_spinning():
    space = CategoricalSpace({"a": ["x", "y"], "b": ["p", "q", "r"]})
    search, _ = counting_search(GridController(space), 50)
    result = search.run()
    assert result.distinct == len(result.rewards) == space.size == 6


def test_tpe_batches_hold_distinct_new_architectures():
    space = CategoricalSpace({"a": ["x", "y"], "b": ["p", "q", "r"], "c": ["u", "v"]})  # 12 architectures
    ctrl = TPEController(space, seed=0, n_startup_trials=2)
    first = ctrl.propose(6)
    assert len(set(first)) == 6
    ctrl.observe(first, [float(i) for i in range(6)])
    second = ctrl.propose(6)
    assert len(set(second)) == 6 and not set(second) & set(first)


def test_tpe_stops_asking_once_every_architecture_is_known():
    # A benchmark asking more evaluations than its table holds: TPE asked 22 times per repeat, each ask
    # told at once, and its asks slow down with its trials (a 3-decision table ran for minutes)
    space = CategoricalSpace({"a": ["x", "y"], "b": ["p", "q"]})  # 4 architectures
    ctrl = TPEController(space, seed=0, n_startup_trials=2)
    every = ctrl.propose(4)
    ctrl.observe(every, [0.1, 0.2, 0.3, 0.4])
    before = len(ctrl.study.trials)
    repeats = ctrl.propose(3)
    assert set(repeats) <= set(every)
    assert len(ctrl.study.trials) - before == 3  # one ask per proposal, no told-at-once detours


def test_local_search_reaches_the_toy_optimum_and_moves_by_neighbours():
    space = toy_space()
    ctrl = LocalSearchController(space, seed=0, num_init=10)
    target = np.asarray(space.sample(np.random.default_rng(5)))
    evaluator = MatchEvaluator(target)
    result = BudgetSearch(space, evaluator, ctrl, MetricReward("match"), 400, 10).run()
    # Random search over 2**20 architectures finds one target in 400 draws with p < 0.1 %.
    assert result.best_reward == 1.0
    first_centre = ctrl.centre
    assert first_centre is not None and len(ctrl.centres) >= 2
    nbrs = ctrl.neighbours(first_centre)
    assert len(nbrs) == len(set(nbrs)) == sum(n - 1 for n in space.num_choices.tolist())
    assert all(sum(a != b for a, b in zip(n, first_centre)) == 1 for n in nbrs)


@pytest.mark.parametrize(
    "controller, start",
    [("local_search", "num_init"), ("evolution", "population_size"), ("tpe", "n_startup_trials")],
)
def test_a_random_start_that_takes_the_whole_budget_is_named(controller, start, caplog):
    # controller.num_init=1000 with 60 evaluations ran random search and said nothing
    from hydra import compose, initialize_config_dir

    from rlnas.config import CONF_DIR
    from rlnas.search.budget import build_budget_search

    overrides = ["+benchmark=toy", f"controller={controller}", "benchmark.evaluations=60"]
    for value, warned in ((60, True), (10, False)):
        caplog.clear()
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=[*overrides, f"controller.{start}={value}"])
        with caplog.at_level("WARNING"):
            build_budget_search(cfg, None, progress=False)
        assert (f"controller.{start}={value} draws at least the 60 architectures" in caplog.text) is warned


def test_local_search_restarts_at_a_local_optimum():
    space = CategoricalSpace({"a": list("wxyz"), "b": list("pqrs"), "c": list("jklm")})  # 64 architectures
    ctrl = LocalSearchController(space, seed=1, num_init=1)
    first = ctrl.propose(1)[0]
    ctrl.observe([first], [1.0])  # the only good architecture: every neighbour scores 0
    assert ctrl.centre == first
    proposed = []
    for _ in range(9):  # its 3 * 3 neighbours
        archs = ctrl.propose(1)
        proposed += archs
        ctrl.observe(archs, [0.0])
    assert sorted(proposed) == sorted(ctrl.neighbours(first))
    assert ctrl.centre != first and len(ctrl.centres) == 2  # a local optimum: restarted elsewhere
    assert ctrl.centre not in proposed
    assert ctrl.propose(1)[0] == ctrl.centre  # the restart's centre is evaluated first


def tiny_noisy_table(tmp_path):
    path = tmp_path / "seeds.csv"
    path.write_text("arch,s0,s1,s2,test\nx-p,10,20,,50\nx-q,30,31,32,40\ny-p,1,2,3,90\ny-q,5,,,60\n")
    return path


def noisy(tmp_path, seed: int) -> TabularBenchmark:
    space = CategoricalSpace({"a": ["x", "y"], "b": ["p", "q"]})
    return TabularBenchmark(
        space,
        tiny_noisy_table(tmp_path),
        "{a}-{b}",
        "valid",
        metric_columns=["s0", "s1", "s2"],
        report="test",
        seed=seed,
    )


def test_a_noisy_table_draws_seeded_rewards_from_the_seed_columns(tmp_path):
    draws = [noisy(tmp_path, 0).evaluate((0, 0)).metrics["valid"] for _ in range(1)]
    a, b = noisy(tmp_path, 0), noisy(tmp_path, 0)
    first = [a.evaluate((0, 0)).metrics["valid"] for _ in range(40)]
    assert first == [b.evaluate((0, 0)).metrics["valid"] for _ in range(40)]  # seeded
    assert set(first) == {10.0, 20.0} and draws[0] in (10.0, 20.0)  # the empty seed is never drawn
    other = [noisy(tmp_path, 1).evaluate((0, 0)).metrics["valid"] for _ in range(40)]
    assert other != first
    assert a.evaluate((1, 1)).metrics == {"test": 60.0, "valid": 5.0}
    assert a.noisy and a.reward_metric == "valid" and a.report_metric == "test"


def test_the_pick_is_the_best_mean_reward_and_requery_counts(tmp_path):
    evaluator = noisy(tmp_path, 0)
    space = evaluator.space
    result = BudgetSearch(space, evaluator, GridController(space), MetricReward("valid"), 4, 4).run()
    assert result.best_arch == (0, 1)  # x-q: reward 30-32 beats every other cell's draws
    assert result.best_evaluation.metrics["test"] == 40.0
    requery = BudgetSearch(space, noisy(tmp_path, 0), GridController(space), MetricReward("valid"), 12, 4, requery=True)
    out = requery.run()
    assert out.distinct == 4 and len(out.rewards) == 12  # repeats were trained again, and counted
    assert out.best_reward == pytest.approx(np.mean([r for _, r in requery.seen[out.best_arch]]))


@pytest.mark.skipif(not SEEDS_TABLE.is_file(), reason="per-seed NAS-Bench-201 table not beside the checkout")
def test_the_comparison_reports_the_test_accuracy_of_the_pick_on_the_noisy_table():
    run = run_benchmark("nb201_cifar10_noisy", "random", 0, 30, [])
    assert run["metric"] == "cifar10_test_acc" and len(run["best_metric"]) == 30
    # Every reported value is a table test accuracy, and the pick changes only when a higher reward is seen.
    rewards, best = run["rewards"], run["best_so_far"]
    assert best == list(np.maximum.accumulate(rewards))
    assert all(0 < v <= 0.944 for v in run["best_metric"])
    assert run["distinct"] == 30


def test_each_budgets_row_counts_the_distinct_architectures_evaluated_by_that_budget(tmp_path):
    from tools.compare_controllers import replot, summarise

    def run(distinct: int) -> dict:  # one search of the largest budget, read at every smaller one
        curve = [0.5 + 0.001 * i for i in range(distinct)]
        return {"best_metric": curve, "distinct": distinct, "scale": 1.0, "optimum": float("nan"), "seconds": 1.0}

    runs = {"random": [run(300), run(300)], "stops_early": [run(200), run(210)]}
    rows = {(r["controller"], r["budget"]): r["distinct"] for r in summarise(runs, [50, 300])}
    # Every row showed the whole run's count (300 distinct at budget 50).
    assert rows == {("random", 50): 50, ("random", 300): 300, ("stops_early", 50): 50, ("stops_early", 300): 205}
    # --replot counts them again from the curves, for tables written before
    (tmp_path / "curves.csv").write_text(
        "controller,seed,evaluation,reward,best_so_far,best_metric\n"
        + "".join(f"random,{s},{i + 1},0.5,0.5,0.5\n" for s, n in ((0, 300), (1, 280)) for i in range(n))
    )
    stale = [
        {"controller": "random", "budget": b, "mean": 0.5, "std": 0.0, "seconds": 1.0, "distinct": 290.0}
        for b in (50, 300)
    ]
    (tmp_path / "table.json").write_text(json.dumps({"title": "t", "metric": "m", "rows": stale}))
    replot(tmp_path)
    assert [r["distinct"] for r in json.loads((tmp_path / "table.json").read_text())["rows"]] == [50, 290]
    assert "| random | 50 |" in (tmp_path / "table.md").read_text()


def test_settings_a_table_comparison_would_ignore_are_refused(capsys):
    from tools.compare_controllers import main

    # --truth-seeds 3 with --benchmark ran, its standalone trainings silently skipped
    with pytest.raises(SystemExit) as info:
        main(["--benchmark", "toy", "--seeds", "1", "--budgets", "10", "--truth-seeds", "3"])
    assert info.value.code == 2
    assert "--truth-seeds trains each pick standalone, with --task" in capsys.readouterr().err


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm([0.01, float("nan")])[1])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1, and monotone in the raw order
    rows = correct([{"p_vs_random": 0.01, "p_vs_evolution": 0.04}, {"p_vs_random": 0.03}])
    assert rows[0]["p_vs_random_holm"] == pytest.approx(0.03)
    assert rows[0]["p_vs_evolution_holm"] == pytest.approx(0.06)
    assert rows[1]["p_vs_random_holm"] == pytest.approx(0.06)


def test_the_policy_share_is_recorded_and_fallback_archs_get_no_policy_gradient():
    space = toy_space()
    ctrl = ENASController(space, seed=0, novel_tries=0)
    archs = ctrl.propose(10)
    stats = ctrl.observe(archs, list(np.linspace(0, 1, 10)))
    assert stats["policy_share"] == 1.0 and ctrl.memory.sources == {"policy": 10, "fallback": 0, "local": 0}

    def update(fallback: bool) -> float:
        ctrl = ENASController(space, seed=0, elite_size=0, entropy_weight=0.0, skip_weight=0.0)
        before = [p.detach().clone() for p in ctrl.policy.parameters()]
        archs = [ctrl.sample_allowed() for _ in range(10)]
        ctrl.memory.fallback = set(archs) if fallback else set()
        ctrl.observe(archs, list(np.linspace(0, 1, 10)))
        return sum(float((p.detach() - b).abs().sum()) for p, b in zip(ctrl.policy.parameters(), before))

    assert update(fallback=True) == 0.0  # mutations the policy did not sample are not reinforced
    assert update(fallback=False) > 0.0


def test_the_fallback_share_counts_mutated_proposals():
    space = CategoricalSpace({"a": ["x", "y", "z"], "b": ["p", "q", "r"]})
    ctrl = ENASController(space, seed=0, novel_tries=1)
    ctrl.memory.seen = {(a, b) for a in range(3) for b in range(3) if (a, b) != (2, 2)}
    # With 8 of 9 architectures seen, most proposals must come from mutation walks.
    ctrl.propose(3)
    assert ctrl.memory.sources["policy"] + ctrl.memory.sources["fallback"] == 3
    assert ctrl.memory.sources["fallback"] == len(ctrl.memory.fallback) >= 1


@pytest.mark.parametrize("fallback, one_step", [("neighbours", True), ("walk", False)])
def test_the_neighbours_fallback_proposes_unseen_neighbours_of_the_policys_samples(fallback, one_step):
    """Local search's step: every neighbour of a known architecture is proposed before the walk goes further."""
    space = CategoricalSpace({k: ["x", "y", "z", "w"] for k in "abcd"})
    ctrl = ENASController(space, seed=0, novel_tries=1, fallback=fallback)
    ctrl.memory.seen = {(0, 0, 0, 0)}
    ctrl.sample = lambda n: [(0, 0, 0, 0)] * n  # a policy settled on one architecture
    proposals = ctrl.propose(12)  # its 12 neighbours
    distance = [sum(a != 0 for a in arch) for arch in proposals]
    assert len(set(proposals)) == 12 and (0, 0, 0, 0) not in proposals
    assert (distance == [1] * 12) == one_step  # the random walk wanders further


def test_local_steps_climb_from_the_best_while_the_policy_is_uncertain_and_fade_as_it_learns():
    """controller.local_share: unseen neighbours of the best architecture seen, in proportion to the policy's
    normalised entropy; counted apart from the policy's proposals and given no policy gradient."""
    space = CategoricalSpace({k: ["x", "y", "z", "w"] for k in "abcd"})
    ctrl = ENASController(space, seed=0, local_share=0.5)
    first = ctrl.propose(10)
    assert ctrl.memory.sources == {"policy": 10, "fallback": 0, "local": 0}  # nothing seen yet: no best
    rewards = [float(i) for i in range(10)]
    ctrl.observe(first, rewards)
    best = first[-1]
    assert 0.9 < ctrl.memory.local_scale <= 1.0  # one update: still near uniform
    batch = ctrl.propose(10)
    local = [a for a in batch if sum(x != y for x, y in zip(a, best)) == 1 and a in ctrl.memory.fallback]
    assert len(local) == ctrl.memory.sources["local"] == round(0.5 * ctrl.memory.local_scale * 10) == 5
    assert batch[:5] == local and len(set(batch)) == 10 and not set(batch) & set(first)
    assert 0 < ctrl.memory.policy_share() < 1
    ctrl.observe(batch, [0.0] * 10)
    ctrl.memory.local_scale = 0.0  # a settled policy: it proposes alone
    ctrl.propose(10)
    assert ctrl.memory.sources["local"] == 5
    with pytest.raises(ValueError, match=r"controller.local_share=1.5 must be in \[0, 1\]"):
        ENASController(space, seed=0, local_share=1.5)


def test_local_steps_at_a_local_optimum_leave_the_batch_to_the_policy():
    space = CategoricalSpace({"a": ["x", "y"], "b": ["p", "q", "r"]})
    ctrl = ENASController(space, seed=0, local_share=1.0)
    ctrl.memory.add([(0, 0), (1, 0), (0, 1), (0, 2)], [1.0, 0.0, 0.0, 0.0])  # (0, 0) and all its neighbours
    batch = ctrl.propose(2)
    assert ctrl.memory.sources["local"] == 0 and set(batch) == {(1, 1), (1, 2)}


def test_an_unknown_fallback_is_named():
    with pytest.raises(ValueError, match="controller.fallback='teleport' is unknown"):
        EliteMemory(fallback="teleport")


def test_the_toy_target_differs_per_seed_and_from_a_controller_seeded_alike():
    space = toy_space()
    targets = [tuple(HiddenTargetBenchmark(space, 0, seed=s).target) for s in range(5)]
    assert len(set(targets)) == 5
    assert tuple(HiddenTargetBenchmark(space, 0, seed=0).target) == targets[0]  # reproducible
    for s in range(5):
        assert RandomController(space, seed=s).propose(1)[0] != targets[s]
        assert space.sample(np.random.default_rng(s)) != targets[s]


def test_enas_repeated_steps_use_the_clipped_ratio():
    from rlnas.controllers.enas import clipped_surrogate

    old = torch.log(torch.tensor([0.5, 0.5, 0.5, 0.5]))
    new = torch.log(torch.tensor([0.5, 0.8, 0.8, 0.3])).requires_grad_()
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    clipped_surrogate(new, old, adv, 0.2).sum().backward()
    grad = new.grad.tolist()
    assert grad[0] == pytest.approx(1.0)  # ratio 1: REINFORCE's gradient, A * d log p
    assert grad[1] == 0.0  # ratio 1.6 > 1.2 with A > 0: pushed far enough, no more gradient
    assert grad[2] == pytest.approx(-1.6)  # ratio 1.6 with A < 0: still pulled back (unclipped side)
    assert grad[3] == 0.0  # ratio 0.6 < 0.8 with A < 0: pushed far enough
    with pytest.raises(ValueError, match="controller.clip_range"):
        ENASController(toy_space(), clip_range=0)


def test_a_step_that_moves_an_architecture_far_leaves_the_update_finite():
    # In a space of thousands of decisions (space.num_layers=300: 45,150) one step moved an
    # architecture's log-probability by 141; exp(141) is inf in float32 and the policy became NaN.
    from rlnas.controllers.enas import clipped_surrogate

    old = torch.zeros(3)
    new = torch.tensor([141.0, 141.0, -1500.0]).requires_grad_()
    surrogate = clipped_surrogate(new, old, torch.tensor([1.0, -1.0, -1.0]), 0.2)
    surrogate.sum().backward()
    assert torch.isfinite(surrogate).all() and torch.isfinite(new.grad).all()
    assert new.grad.tolist() == [0.0, 0.0, 0.0]  # far outside the trust region: no gradient


def test_the_comparison_gives_the_same_table_with_parallel_runs(tmp_path):
    from tools.compare_controllers import main

    tables = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        main(
            [
                "--benchmark",
                "toy",
                "--seeds",
                "3",
                "--budgets",
                "20",
                "40",
                "--controllers",
                "local_search",
                "--jobs",
                str(jobs),
                "--out",
                str(out),
            ]
        )
        rows = json.loads((out / "table.json").read_text())["rows"]
        tables.append([(r["controller"], r["budget"], r["mean"], r["std"]) for r in rows])
    assert tables[0] == tables[1]
    with pytest.raises(SystemExit):
        main(["--benchmark", "toy", "--seeds", "0", "--out", str(tmp_path / "none")])


@pytest.mark.parametrize(
    "option, message",
    [
        (["--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--jobs", "-1"], "--jobs must be >= 1, got -1"),
        (["--truth-seeds", "-1"], "--truth-seeds must be >= 0 (0: none), got -1"),
        (["--truth-epochs", "0"], "--truth-epochs must be >= 1, got 0"),
    ],
)
def test_comparison_counts_that_run_nothing_are_refused_before_any_search(option, message, tmp_path, capsys):
    from tools.compare_controllers import main

    with pytest.raises(SystemExit):
        main(["--task", "mnist1d", *option, "--out", str(tmp_path / "none")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    "option, message",
    [
        # a typo in a rival was skipped silently, as if it had not run
        (["--rivals", "evolutoin"], "--rivals evolutoin is not among the runs ['random', 'enas']"),
        # two runs under one label shared a table row
        (["--variant", "random", "enas", "controller.lr=0.1"], "--variant random: that label is taken by another run"),
        # a variant's bad value stopped the comparison when its turn came, in the controller's words
        (["--variant", "fast", "enas", "controller.lr=abc"], "fast: controller.lr='abc' must be float"),
        # a variant's own budget was tabulated at the shared budget (10 evaluations shown as 20)
        (["--variant", "short", "enas", "benchmark.evaluations=10"], "--variant short: benchmark.evaluations=10 would"),
        # every seed of a variant ran as seed 5
        (["--variant", "s5", "enas", "seed=5"], "--variant s5: seed=5 would change what the runs are compared on"),
        # an empty label made a table row without a name
        (["--variant", "", "enas", "controller.lr=0.1"], "--variant '': a label must be a name"),
    ],
)
def test_comparison_runs_are_checked_before_the_first_starts(option, message, tmp_path, capsys):
    from tools.compare_controllers import main

    with pytest.raises(SystemExit):
        main(["--benchmark", "toy", "--controllers", "enas", "--seeds", "1", *option, "--out", str(tmp_path / "c")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_a_controller_config_of_the_users_own_is_compared_like_the_packages(tmp_path, capsys):
    """--controllers took only the package's names ("invalid choice"), so a user could not compare their own."""
    import json

    from tools.compare_controllers import main

    conf = tmp_path / "conf"
    (conf / "controller").mkdir(parents=True)
    (conf / "controller" / "mine.yaml").write_text("_target_: rlnas.controllers.LocalSearchController\n")
    args = ["--benchmark", "toy", "--seeds", "1", "--budgets", "20", "--jobs", "1", "--out", str(tmp_path / "c")]
    with pytest.raises(SystemExit):
        main([*args, "--controllers", "mine"])
    assert "--controllers mine is unknown; choose from" in capsys.readouterr().err
    main([*args, "--config-dir", str(conf), "--controllers", "mine", "--variant", "mine_b", "mine"])
    rows = json.loads((tmp_path / "c" / "table.json").read_text())["rows"]
    assert [r["controller"] for r in rows] == ["random", "mine", "mine_b"]


def test_json_outputs_are_strict_json(tmp_path):
    from rlnas.utils import write_json_atomic

    def refuse(token: str):
        raise ValueError(f"not strict JSON: {token}")

    write_json_atomic(tmp_path / "s.json", {"mean": float("nan"), "curve": [1.0, float("inf")], "n": 3})
    assert json.loads((tmp_path / "s.json").read_text(), parse_constant=refuse) == {
        "mean": None,
        "curve": [1.0, None],
        "n": 3,
    }


def test_local_search_state_round_trip():
    space = toy_space()
    ctrl = LocalSearchController(space, seed=2, num_init=3)
    target = np.asarray(space.sample(np.random.default_rng(1)))
    for _ in range(4):
        archs = ctrl.propose(5)
        ctrl.observe(archs, [float(np.mean(np.asarray(a) == target)) for a in archs])
    other = LocalSearchController(space, seed=99, num_init=3)
    other.load_state_dict(ctrl.state_dict())
    assert other.propose(7) == ctrl.propose(7) and other.centre == ctrl.centre


@pytest.mark.parametrize(
    "override, message",
    [
        # the policy became NaN and the next sample failed in torch ("probability tensor contains ... nan")
        ("controller.lr=1e37", "controller.lr=1e+37: a policy update made the controller's weights non-finite"),
        # Adam divides the rate by 1 - beta1: a traceback "cannot be converted to type float without overflow"
        ("controller.lr=3e38", "controller.lr=3e+38: overflows float32 in the controller's optimiser step"),
        # SB3's next epoch built a distribution from NaN logits and said so in its own words
        (
            "controller=maskable_ppo controller.learning_rate=1e37",
            "controller.learning_rate=1e+37: a policy update made the controller's weights non-finite",
        ),
    ],
)
def test_a_learning_rate_that_breaks_the_policy_is_named(override, message):
    from rlnas.search.budget import build_budget_search

    cfg = load_config(["+benchmark=toy", "seed=0", "benchmark.evaluations=100", *override.split()])
    with pytest.raises(ValueError, match=re.escape(message)):
        build_budget_search(cfg, None, progress=False).run()
