import time

from rlnas.utils.timing import ComputeTimer


def test_compute_timer_counts_only_when_enabled():
    timer = ComputeTimer("cpu")
    with timer():
        time.sleep(0.01)
    assert timer.seconds == 0.0
    timer.enabled = True
    with timer():
        time.sleep(0.02)
    time.sleep(0.02)  # outside: not counted
    assert 0.015 < timer.seconds < 0.035
