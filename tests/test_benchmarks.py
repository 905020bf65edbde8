"""Tabular benchmarks: configuration-only tables, clear errors, whole searches in seconds."""

import json
import os
import re
from pathlib import Path

import pytest

from rlnas.benchmarks import TabularBenchmark
from rlnas.data.base import DataError
from rlnas.spaces import CategoricalSpace
from tests.conftest import ROOT, run_cli

NB201 = ROOT.parent / "shared" / "benchmarks" / "nb201_cifar10_test.csv"
needs_nb201 = pytest.mark.skipif(not NB201.is_file(), reason="NAS-Bench-201 table not beside the checkout")


def tiny_space() -> CategoricalSpace:
    return CategoricalSpace({"a": ["x", "y"], "b": ["p", "q", "r"]})


def write_csv(path: Path, rows: dict[str, float], header: str = "key,acc,params") -> Path:
    path.write_text(header + "\n" + "".join(f"{k},{v},{len(k)}\n" for k, v in rows.items()))
    return path


def test_csv_and_json_tables_answer_the_same(tmp_path):
    rows = {f"{a}-{b}": i / 10 for i, (a, b) in enumerate((a, b) for a in "xy" for b in "pqr")}
    csv_table = TabularBenchmark(
        tiny_space(), write_csv(tmp_path / "t.csv", rows), "{a}-{b}", "acc", "key", {"params": "params"}
    )
    (tmp_path / "t.json").write_text(json.dumps({k: {"acc": v, "params": len(k)} for k, v in rows.items()}))
    json_table = TabularBenchmark(tiny_space(), tmp_path / "t.json", "{a}-{b}", "acc", costs={"params": "params"})
    for arch in [(0, 0), (1, 2), (0, 1)]:
        assert csv_table.evaluate(arch) == json_table.evaluate(arch)
    assert csv_table.evaluate((1, 2)).metrics == {"acc": 0.5}
    assert csv_table.evaluate((1, 2)).costs == {"params": 3.0}
    assert csv_table.optimum() == 0.5


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found; it must be a CSV with columns ['key', 'acc']"),
        ("key,score\nx-p,1\n", "no column 'acc'"),
        ("key,acc\nx-p,high\n", "record 'x-p' (row 2) lacks a number"),
        ("key,acc\n", "holds no records"),
        # the last 'acc' column won, unseen
        ("key,acc,acc\nx-p,0.1,0.9\n", "column 'acc' appears twice in its header"),
        # a percent sign: the value is shown (a decimal comma where semicolons separate is read)
        ("key;acc\nx-p;50 %\n", "record 'x-p' (row 2) lacks a number in one of ['acc'] (has {'acc': '50 %'})"),
        # Python reads 1_0.5 as 10.5 (digit grouping); no spreadsheet writes it, so it is no number here
        ("key,acc\nx-p,1_0.5\n", "record 'x-p' (row 2) lacks a number in one of ['acc'] (has {'acc': '1_0.5'})"),
    ],
)
def test_bad_tables_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match="table.csv") as err:
        TabularBenchmark(tiny_space(), path, "{a}-{b}", "acc", "key")
    assert message in str(err.value)


def test_a_table_path_that_is_a_device_or_pipe_is_named_so_and_never_read(tmp_path):
    """/dev/zero (never ends) was reported "not found", though it exists."""
    pipe = tmp_path / "table.csv"
    os.mkfifo(pipe)  # opened for reading, a pipe with no writer blocks forever
    for path in (Path("/dev/zero"), pipe):
        with pytest.raises(DataError, match=f"benchmark table {path} is not a regular file"):
            TabularBenchmark(tiny_space(), path, "{a}-{b}", "acc", "key")


def test_tables_as_spreadsheets_save_them_are_read(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark; other locales separate with semicolons; padded names."""
    rows = "".join(f"{a}-{b},{i / 10}\n" for i, (a, b) in enumerate((a, b) for a in "xy" for b in "pqr"))
    plain = tmp_path / "plain.csv"
    plain.write_text("key,acc\n" + rows)
    expected = [
        TabularBenchmark(tiny_space(), plain, "{a}-{b}", "acc", "key").evaluate((i, j))
        for i in (0, 1)
        for j in (0, 1, 2)
    ]
    variants = {
        "bom.csv": ("key,acc\n" + rows).encode("utf-8-sig"),
        "semicolons.csv": ("key;acc\n" + rows.replace(",", ";")).encode(),
        "tabs.csv": ("key\tacc\n" + rows.replace(",", "\t")).encode(),
        "padded.csv": ("key , acc\n" + rows.replace(",", " , ")).encode(),
        "decimal_commas.csv": ("key;acc\n" + rows.replace(",", ";").replace(".", ",")).encode(),
    }
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        table = TabularBenchmark(tiny_space(), tmp_path / name, "{a}-{b}", "acc", "key")
        assert [table.evaluate((i, j)) for i in (0, 1) for j in (0, 1, 2)] == expected, name


def test_missing_row_and_bad_template_are_clear(tmp_path):
    path = write_csv(tmp_path / "t.csv", {"x-p": 0.1})
    table = TabularBenchmark(tiny_space(), path, "{a}-{b}", "acc", "key")
    with pytest.raises(KeyError, match="no record 'y-q'"):
        table.evaluate((1, 1))
    with pytest.raises(ValueError, match=r"benchmark.key_template names \['c'\]"):
        TabularBenchmark(tiny_space(), path, "{a}-{c}", "acc", "key")
    # Python's "expected '}' before end of string", naming nothing
    with pytest.raises(ValueError, match=r"benchmark.key_template='\{a\}-\{b': expected '\}'"):
        TabularBenchmark(tiny_space(), path, "{a}-{b", "acc", "key")
    # a format spec made each key as wide as it asked (a GB for {a:>999999999})
    with pytest.raises(ValueError, match=r"\{a\} takes no conversion or format"):
        TabularBenchmark(tiny_space(), path, "{a:>9}-{b}", "acc", "key")
    # every b read the row of its a: the decision did nothing, silently
    with pytest.raises(ValueError, match=r"leaves out decisions \['b'\]"):
        TabularBenchmark(tiny_space(), path, "{a}", "acc", "key")


def test_env_var_overrides_the_configured_path(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "mine.csv", {f"{a}-{b}": 0.3 for a in "xy" for b in "pqr"})
    monkeypatch.setenv("MY_TABLE", str(path))
    table = TabularBenchmark(tiny_space(), "does/not/exist.csv", "{a}-{b}", "acc", "key", env_var="MY_TABLE")
    assert table.path == path


@needs_nb201
def test_nb201_table_matches_its_published_checks():
    from rlnas.search.budget import build_budget_search
    from tools._common import load_config

    search = build_budget_search(load_config(["+benchmark=nb201_cifar10", "controller=random"]), None)
    assert search.space.size == 15625 and len(search.evaluator.rows) == 15625
    assert search.evaluator.optimum() == pytest.approx(0.943733, abs=1e-5)
    best = search.space.encode(
        {
            "e0": "nor_conv_3x3",
            "e1": "nor_conv_3x3",
            "e2": "nor_conv_3x3",
            "e3": "skip_connect",
            "e4": "nor_conv_3x3",
            "e5": "nor_conv_3x3",
        }
    )
    assert 0.9 < search.evaluator.evaluate(best).metrics["cifar10_test_acc"] <= 0.943733 + 1e-9


# Rows pinned by their official NB201 index: the ops per edge in the documented edge order
# (node1<-0), (node2<-0), (node2<-1), (node3<-0), (node3<-1), (node3<-2), and the row's accuracy.
# A key template that permuted the edges would read other rows and fail.
PINNED = {
    0: (["avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect"], 85.86333),
    6111: (["nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1"], 94.37333),
    15624: (["nor_conv_1x1", "none", "nor_conv_1x1", "none", "nor_conv_1x1", "nor_conv_1x1"], 86.82333),
}


@needs_nb201
@pytest.mark.parametrize("index", sorted(PINNED))
def test_nb201_rows_are_pinned_by_their_official_index(index):
    from rlnas.search.budget import build_budget_search
    from tools._common import load_config

    search = build_budget_search(load_config(["+benchmark=nb201_cifar10", "controller=random"]), None)
    ops, accuracy = PINNED[index]
    arch = search.space.encode({f"e{i}": op for i, op in enumerate(ops)})
    assert search.evaluator.evaluate(arch).metrics["cifar10_test_acc"] == pytest.approx(accuracy / 100, abs=1e-7)


@needs_nb201
def test_benchmark_search_from_the_command_line(tmp_path):
    controllers = ["random", "enas", "maskable_ppo", "evolution"]
    proc = run_cli(
        "-m",
        "+benchmark=nb201_cifar10",
        f"controller={','.join(controllers)}",
        "benchmark.evaluations=60",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [job.name.split("=")[-1] for job in jobs] == controllers
    for job in jobs:
        best = json.loads((job / "best_arch.json").read_text())
        assert 0.85 < best["metrics"]["cifar10_test_acc"] <= 0.9438 and best["benchmark"] == "nb201_cifar10"
        lines = (job / "history.csv").read_text().splitlines()
        assert len(lines) == 61 and float(lines[-1].split(",")[4]) == pytest.approx(best["reward"], rel=1e-5)
        assert json.loads((job / "summary.json").read_text())["evaluations"] == 60


def test_missing_table_is_one_line_naming_the_path(tmp_path):
    proc = run_cli(
        "+benchmark=nb201_cifar10",
        "benchmark.path=/nowhere/nb201.csv",
        "benchmark.env_var=null",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "/nowhere/nb201.csv not found; it must be a CSV with columns ['arch', 'cifar10_test_acc']" in proc.stderr


def test_toy_benchmark_search_learns(tmp_path):
    from rlnas.search.budget import build_budget_search
    from tools._common import load_config

    cfg = load_config(["+benchmark=toy", "controller=evolution", "benchmark.evaluations=800"])
    result = build_budget_search(cfg, tmp_path, progress=False).run()
    assert result.best_reward == 1.0
    assert (tmp_path / "history.csv").is_file() and (tmp_path / "controller.pt").is_file()
    assert result.best_so_far == sorted(result.best_so_far)


@needs_nb201
def test_compare_tool_writes_table_plot_and_curves(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT))
    from tools.compare_controllers import main

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- study:out -->\nold table\n<!-- /study:out -->\nafter\n")
    out = tmp_path / "out"
    main(
        [
            "--benchmark",
            "nb201_cifar10",
            "--seeds",
            "2",
            "--budgets",
            "20",
            "40",
            "--controllers",
            "evolution",
            "--out",
            str(out),
            "--readme",
            str(readme),
        ]
    )
    block = readme.read_text()
    assert "old table" not in block and block.startswith("intro\n") and block.endswith("after\n")
    assert "| controller | 20 evals | p vs random | p vs evolution | 40 evals | p vs random | p vs evolution |" in block
    assert "| evolution | " in block and "(REA)" in block
    tmp_path = out
    table = (tmp_path / "table.md").read_text()
    assert "| random | 20 |" in table and "| evolution | 40 |" in table and "93.70 ± 0.36" in table
    # Strict JSON (jq, JavaScript): the reference's undefined p against itself is null, not a bare NaN.
    rows = json.loads((tmp_path / "table.json").read_text(), parse_constant=pytest.fail)["rows"]
    assert {r["controller"] for r in rows} == {"random", "evolution"} and rows[0]["p_vs_random"] is None
    assert all(0 <= r["regret"] < 10 for r in rows)
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    import gzip

    with gzip.open(tmp_path / "curves.csv.gz", "rt") as f:
        assert len(f.read().splitlines()) == 1 + 2 * 2 * 40
    # The figure is redrawn from the stored curves alone.
    (tmp_path / "curves.png").unlink()
    main(["--replot", str(out)])
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "table.md").read_text() == table  # null read back as the NaN it stood for
    # One seed has a mean and no spread: it showed "± 0", as if the runs agreed.
    main(
        [
            "--benchmark",
            "toy",
            "--seeds",
            "1",
            "--budgets",
            "10",
            "--controllers",
            "random",
            "--out",
            str(tmp_path / "one"),
        ]
    )
    one = (tmp_path / "one" / "table.md").read_text()
    assert one.startswith("## toy: 1 seed, budgets [10]") and "| random | 10 | 0.6 (1 seed) | — |" in one


@pytest.mark.parametrize(
    "rows, message",
    [
        ("x-p,nan\nx-q,0.5\n", r"record 'x-p' \(row 2\) has acc=nan"),
        ("x-p,0.4\nx-q,inf\n", r"record 'x-q' \(row 3\) has acc=inf"),
        ("x-p,0.4\nx-p,0.5\n", r"record 'x-p' appears twice \(again at row 3\)"),
    ],
)
def test_tables_with_non_finite_values_or_duplicate_records_are_refused(tmp_path, rows, message):
    path = tmp_path / "t.csv"
    path.write_text("arch,acc\n" + rows)
    space = CategoricalSpace({"a": ["x"], "b": ["p", "q"]})
    with pytest.raises(DataError, match=message):
        TabularBenchmark(space, path, "{a}-{b}", "acc")


def _sparse_table(tmp_path: Path) -> Path:
    """A 4 x 4 x 4 table holding 40 of its 64 architectures; score is highest at c-b-d, error = 1 - score."""
    import itertools
    import random

    rng = random.Random(0)
    lines = ["key,score,error,params"]
    for x, y, z in itertools.product("abcd", repeat=3):
        if (x, y, z) != ("c", "b", "d") and rng.random() < 0.4:
            continue
        score = 0.4 * (x == "c") + 0.3 * (y == "b") + 0.2 * (z == "d") + 0.05 * rng.random()
        lines.append(f"{x}-{y}-{z},{score:.4f},{1 - score:.4f},{100 + 10 * 'abcd'.index(x)}")
    (tmp_path / "sparse.csv").write_text("\n".join(lines) + "\n")
    conf = tmp_path / "conf" / "benchmark"
    conf.mkdir(parents=True)
    (conf / "sparse.yaml").write_text(
        "# @package _global_\n"
        "benchmark:\n"
        "  name: sparse\n"
        f"  path: {tmp_path / 'sparse.csv'}\n"
        "  key_column: key\n"
        '  key_template: "{x}-{y}-{z}"\n'
        "  metric: score\n"
        "  costs: {params: params}\n"
        "  decisions: {x: [a, b, c, d], y: [a, b, c, d], z: [a, b, c, d]}\n"
        "  evaluations: 30\n"
        "  archs_per_step: 5\n"
    )
    return tmp_path / "conf"


def _sparse_search(conf: Path, *overrides: str):
    from rlnas.search.budget import build_budget_search
    from tools._common import load_config

    cfg = load_config(["+benchmark=sparse", f"hydra.searchpath=[file://{conf}]", *overrides])
    return build_budget_search(cfg, None, progress=False)


def test_a_sparse_table_stops_at_an_absent_architecture_unless_told_to_skip_it(tmp_path):
    """Absent proposals (benchmark.missing=skip) cost and count nothing, teach the controller, never get picked."""
    conf = _sparse_table(tmp_path)
    with pytest.raises(KeyError, match=r"has no record '.*' .*\(a sparse table: benchmark.missing=skip"):
        _sparse_search(conf, "controller=random").run()

    search = _sparse_search(conf, "controller=enas", "+benchmark.missing=skip")
    told: list[tuple[tuple, float]] = []
    observe = search.controller.observe
    search.controller.observe = lambda archs, rewards: told.extend(zip(archs, rewards)) or observe(archs, rewards)
    result = search.run()
    rows = search.evaluator.rows
    assert result.distinct == len(result.rewards) == 30  # 30 architectures the table holds were evaluated
    assert search.absent and all(search.evaluator.key(a) not in rows for a in search.absent)
    assert all(search.evaluator.key(a) in rows for a in search.seen)
    assert search.evaluator.key(result.best_arch) in rows
    lowest = min(row["score"] for row in rows.values())
    assert search.evaluator.missing_reward == pytest.approx(lowest)
    absent_rewards = [r for a, r in told if a in search.absent]
    assert absent_rewards and all(r == pytest.approx(lowest) for r in absent_rewards)
    assert result.proposals >= 30 + len(search.absent)

    # The Gymnasium env: an absent architecture ends the episode with the stand-in reward, said in info.
    from rlnas.env import ArchitectureEnv

    env = ArchitectureEnv(search.space, search.evaluator)
    absent = next(iter(search.absent))
    env.reset(seed=0)
    for action in absent:
        _, reward, done, _, info = env.step(action)
    assert done and info["missing"] and reward == pytest.approx(lowest)


def test_a_lower_is_better_column_is_searched_with_a_negative_scale(tmp_path):
    """metric_scale: -1 rewards the negated error: the search and the optimum prefer the lowest."""
    conf = _sparse_table(tmp_path)
    overrides = ("+benchmark.missing=skip", "benchmark.metric=error", "+benchmark.metric_scale=-1")
    search = _sparse_search(conf, "controller=evolution", "benchmark.evaluations=40", *overrides)
    lowest_error = min(row["error"] for row in search.evaluator.rows.values())
    assert search.evaluator.optimum() == pytest.approx(-lowest_error)
    result = search.run()
    assert search.evaluator.key(result.best_arch) == "c-b-d"  # the lowest error, found within 40
    assert result.best_evaluation.metrics["error"] == pytest.approx(-lowest_error)
    # Rewards that would prefer worse architectures on a negated column are refused.
    with pytest.raises(ValueError, match="reward=mnas multiplies the metric"):
        _sparse_search(conf, *overrides, "reward=mnas")
    with pytest.raises(ValueError, match=r"reward.penalty=0 is not below the table's lowest reward"):
        _sparse_search(conf, *overrides, "reward=hard", "reward.targets.size_mb=null", "reward.targets.params=150")
    # A higher-is-better column: a penalty at or above its best reward makes every limit worth breaking.
    with pytest.raises(ValueError, match=r"reward.penalty=1 is not below the table's highest reward \(0.9"):
        _sparse_search(conf, "+benchmark.missing=skip", "reward=hard", "reward.targets.params=150", "reward.penalty=1")
    _sparse_search(conf, "+benchmark.missing=skip", "reward=hard", "reward.targets.params=150", "reward.penalty=-1")
    for bad in ("0", "abc"):
        with pytest.raises(ValueError, match="benchmark.metric_scale must be a finite non-zero number"):
            _sparse_search(conf, f"+benchmark.metric_scale={bad}")
    with pytest.raises(ValueError, match=r"benchmark.missing='maybe' is unknown"):
        _sparse_search(conf, "+benchmark.missing=maybe")


@pytest.mark.parametrize(
    "override, message",
    [
        ("benchmark.evaluations=6.5", r"benchmark.evaluations must be a whole number >= 1, got 6.5"),
        ("benchmark.archs_per_step=abc", r"benchmark.archs_per_step must be a whole number >= 1, got 'abc'"),
        ("+benchmark.requery=maybe", r"benchmark.requery must be true or false, got 'maybe'"),
        (
            "benchmark.metric=params +benchmark.metric_scale=1e308",
            r"benchmark.metric_scale=1e\+308 takes values of .*sparse.csv past the float",
        ),
        ("benchmark.decisions.x=[[a],b]", r"benchmark.decisions.x: a choice must be a name .*, got \['a'\]"),
        ("benchmark.decisions.x=[null,b]", r"benchmark.decisions.x: a choice must be a name .*, got None"),
        # unquoted on/off in YAML: the keys would read True/False instead of the table's words
        ("benchmark.decisions.x=[true,b]", r"benchmark.decisions.x: choice True is YAML's reading of an unquoted"),
        ("benchmark.decisions.x=[a,b,a]", r"benchmark.decisions.x repeats a choice"),
        ("+benchmark.metric_columns=[score,score]", r"benchmark.metric_columns names 'score' twice"),
        (
            "+benchmark.metric_columns=[score,error]",
            r"benchmark.metric='score' names the reward drawn from benchmark.metric_columns, so it must differ",
        ),
    ],
)
def test_benchmark_settings_of_the_wrong_type_are_named(tmp_path, override, message):
    """Each was taken (6.5 evaluations as 6, requery 'maybe' as true, a seed column twice), a KeyError
    ('score', or a metric named like a seed column), a TypeError (a nested choice) or min() of nothing."""
    conf = _sparse_table(tmp_path)
    with pytest.raises(ValueError, match=message):
        _sparse_search(conf, "controller=random", *override.split())


def test_benchmark_costs_that_are_not_a_mapping_are_named():
    """costs: [params] (a list in a config file) was "dictionary update sequence element #0 has length 6"."""
    from rlnas.benchmarks.parts import benchmark_parts

    bench = {"path": "t.csv", "key_template": "{a}", "metric": "acc", "decisions": {"a": ["x"]}, "costs": ["params"]}
    with pytest.raises(ValueError, match=r"benchmark.costs must map each cost name to its column, .* got \['params'\]"):
        benchmark_parts(bench)


def test_a_negative_cost_column_is_refused_and_rows_no_architecture_spells_are_warned_of(tmp_path, caplog):
    """A cost of -100 params reached the reward (MnasNet's factor turned complex, a traceback); a record the
    key template can never produce (a typo, another space's row) was dropped in silence."""
    space = CategoricalSpace({"a": ["x"], "b": ["p", "q"]})
    path = tmp_path / "t.csv"
    path.write_text("arch,acc,params\nx-p,0.4,10\nx-q,0.5,-100\n")
    with pytest.raises(DataError, match=r"record 'x-q' \(row 3\) has params=-100; a cost column \(benchmark.costs\)"):
        TabularBenchmark(space, path, "{a}-{b}", "acc", costs={"params": "params"})
    TabularBenchmark(space, path, "{a}-{b}", "acc")  # the column is no cost there: read as it is
    path.write_text("arch,acc\nx-p,0.4\nx-q,0.5\nx-r,0.9\ny-p,0.1\n")
    with caplog.at_level("WARNING", logger="rlnas.benchmarks.tabular"):
        table = TabularBenchmark(space, path, "{a}-{b}", "acc")
    assert table.unmatched == ["x-r", "y-p"]
    assert f"2 of the 4 records of {path} match no architecture of benchmark.decisions (e.g. 'x-r')" in caplog.text
    caplog.clear()
    # Choices that are prefixes of one another, and template text that is a regex's syntax, still match.
    space = CategoricalSpace({"a": ["conv3", "conv3x3"], "b": ["1", "10"]})
    path.write_text("arch,acc\n" + "".join(f"|{a}+({b})|,0.5\n" for a in ("conv3", "conv3x3") for b in ("1", "10")))
    with caplog.at_level("WARNING", logger="rlnas.benchmarks.tabular"):
        assert TabularBenchmark(space, path, "|{a}+({b})|", "acc").unmatched == []
    assert caplog.text == ""


def test_a_table_search_where_stderr_is_no_terminal_logs_its_progress(monkeypatch, caplog):
    """Its bar is off there (nohup, CI, a cluster job): a 100,000-evaluation search ran minutes without a word."""
    import rlnas.search.budget as budget
    from rlnas.utils import timing
    from tools._common import load_config

    monkeypatch.setattr(timing, "PROGRESS_LINE_S", 0.0)  # a line after every step
    cfg = load_config(["+benchmark=toy", "controller=random", "benchmark.evaluations=30"])
    with caplog.at_level("INFO", logger="rlnas"):
        budget.build_budget_search(cfg, None, progress=None).run()  # None: the bar only on a terminal
    lines = [r.getMessage() for r in caplog.records if " evaluated, best so far " in r.getMessage()]
    assert [line.split(" evaluated")[0] for line in lines] == ["10/30", "20/30", "30/30"]
    assert re.fullmatch(r"10/30 evaluated, best so far [01]\.\d{4}, 0:\d\d elapsed, ETA 0:\d\d", lines[0])
    caplog.clear()
    monkeypatch.setattr(timing, "PROGRESS_LINE_S", 30.0)  # a search of seconds prints none
    with caplog.at_level("INFO", logger="rlnas"):
        budget.build_budget_search(cfg, None, progress=None).run()
    assert " evaluated, best so far " not in caplog.text
