"""Controllers: propose architectures, learn from rewards."""

from rlnas.controllers.base import Controller, RandomController
from rlnas.controllers.baselines import EvolutionController, GridController, LocalSearchController, TPEController
from rlnas.controllers.enas import ENASController, ENASPolicy
from rlnas.controllers.sb3 import MaskablePPOController, PPOController, RecurrentPPOController, SB3Controller

__all__ = [
    "Controller",
    "ENASController",
    "ENASPolicy",
    "EvolutionController",
    "GridController",
    "LocalSearchController",
    "MaskablePPOController",
    "PPOController",
    "RandomController",
    "RecurrentPPOController",
    "SB3Controller",
    "TPEController",
]
