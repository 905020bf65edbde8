import pytest

from rlnas.search.selection import SelectionSettings, knee_point, pareto_front, select


def test_pareto_front_keeps_only_undominated_points_by_cost():
    metric = [0.90, 0.95, 0.80, 0.97, 0.94, 0.97]
    cost = [10, 20, 15, 40, 30, 50]
    assert pareto_front(metric, cost) == [0, 1, 3]


def test_knee_is_the_bend_of_the_front():
    # Gains flatten after cost 20: that point is the knee.
    metric = [0.50, 0.90, 0.93, 0.95]
    cost = [1, 20, 60, 100]
    assert knee_point(metric, cost) == 1


def test_select_rules():
    rewards = [0.3, 0.9, 0.5, 0.7]
    metric = [0.30, 0.90, 0.50, 0.70]
    cost = [1, 100, 2, 3]
    assert select(rewards, metric, cost, SelectionSettings("best"))[0] == 1
    assert select(rewards, metric, cost, SelectionSettings("top_k", k=2)) == [1, 3]
    assert select(rewards, metric, cost, SelectionSettings("knee"))[0] == 3


@pytest.mark.parametrize("kwargs, key", [({"rule": "pareto"}, "selection.rule"), ({"k": 0}, "selection.k")])
def test_selection_settings_errors(kwargs, key):
    with pytest.raises(ValueError, match=key):
        SelectionSettings(**kwargs)
