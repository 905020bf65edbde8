"""The search loop, its callbacks and the config wiring."""

from rlnas.search.builder import build_search
from rlnas.search.loop import Callback, Search
from rlnas.search.settings import Candidate, EpochStats, SearchResult, SearchSettings

__all__ = ["Callback", "Candidate", "EpochStats", "Search", "SearchResult", "SearchSettings", "build_search"]
