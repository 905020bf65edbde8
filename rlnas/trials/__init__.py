"""Trial search: each candidate trained on its own, many at once, on Ray Tune.

The third way to search beside weight sharing and tables (Zoph & Le, 2017;
Real et al., 2019): the controller proposes, every proposal is trained from
scratch with the retrain recipe and scored on the validation split, and the
rewards go back to the controller. :mod:`rlnas.trials.run` is the driver,
:mod:`rlnas.trials.planner` the ask/tell between controller and trials that
finish in any order, :mod:`rlnas.trials.trainable` one trial.
"""
