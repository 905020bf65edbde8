"""Controllers: propose architectures, learn from rewards."""

from rlnas.controllers.base import Controller, RandomController
from rlnas.controllers.baselines import EvolutionController, GridController, TPEController
from rlnas.controllers.enas import ENASController, ENASPolicy

__all__ = [
    "Controller", "ENASController", "ENASPolicy", "EvolutionController", "GridController", "RandomController",
    "TPEController",
]
