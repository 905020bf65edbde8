"""A space given as data: named decisions, each a list of choice names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rlnas.spaces.base import Decision, SearchSpace


class CategoricalSpace(SearchSpace):
    """Independent categorical decisions, e.g. the six edges of a NAS-Bench-201 cell.

    Args:
        decisions: Decision name -> choice names, in the order a controller
            takes them.
        kind: Decision kind of all decisions (one shared controller head).
    """

    def __init__(self, decisions: Mapping[str, Sequence[str]], kind: str = "choice") -> None:
        if not isinstance(decisions, Mapping) or not decisions:
            raise ValueError("space.decisions must map each decision name to its list of choice names")
        built = []
        for name, choices in decisions.items():
            if isinstance(choices, str) or not isinstance(choices, Sequence) or not choices:
                raise ValueError(f"space.decisions.{name} must be a non-empty list of choice names, got {choices!r}")
            odd = [c for c in choices if not isinstance(c, (str, int, float))]  # bool is an int
            if odd:  # a list or a mapping is no name, and YAML reads an unquoted null as None
                raise ValueError(
                    f"space.decisions.{name}: a choice must be a name (text or a number), got {odd[0]!r} "
                    "(quote it in YAML: 'null')"
                )
            if len({str(c) for c in choices}) != len(choices):  # "1" and 1 would be one name in a table key
                raise ValueError(f"space.decisions.{name} repeats a choice: {list(choices)}")
            built.append(Decision(str(name), kind, tuple(str(c) for c in choices)))
        super().__init__(built)
