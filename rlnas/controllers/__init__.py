"""Controllers: propose architectures, learn from rewards."""

from rlnas.controllers.base import Controller, RandomController
from rlnas.controllers.baselines import EvolutionController, GridController, LocalSearchController
from rlnas.controllers.enas import ENASController, ENASPolicy
from rlnas.controllers.ppo import MaskablePPOController, PPOController, RecurrentPPOController
from rlnas.controllers.sb3 import SB3Controller
from rlnas.controllers.tpe import TPEController

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
