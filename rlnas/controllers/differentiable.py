"""Differentiable architecture search on the shared-weight supernets: DARTS and GDAS.

Architecture parameters alpha (one logit per choice of every decision) are
learned by gradient descent on validation batches, alternating with the
supernet's weight steps on training batches (Liu et al., 2019, first-order
approximation). ``mode="darts"`` runs the softmax-weighted mixture of every
choice; ``mode="gdas"`` (Dong & Yang, 2019) samples one choice per decision
with the Gumbel-softmax and runs only that path, its straight-through weight
carrying the gradient to alpha, so a step costs what a single-path step does.

The search loop drives it through :attr:`Controller.differentiable`:
:meth:`path_weights` gives the mixture weights of a supernet step and
:meth:`arch_step` takes an alpha step from a validation loss. Architectures
are still proposed (sampled from softmax(alpha)) and scored like any other
controller's, so histories, TensorBoard and the final re-scoring stay the
same; the final pick includes the argmax of alpha (:meth:`best_guess`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlnas.controllers.base import Controller, check_observation
from rlnas.spaces.base import Arch, SearchSpace
from rlnas.utils import save_figure

#: Spaces whose supernets have a weighted forward (``forward_weighted``).
SUPPORTED = ("MacroSpace", "NB201Space")


class DifferentiableController(Controller):
    """DARTS (softmax mixture) or GDAS (Gumbel-softmax, one sampled path) architecture parameters.

    Args:
        space: A macro or NB201 cell space (the others are refused).
        seed: Seed of sampling.
        mode: ``darts`` or ``gdas``.
        lr: Adam learning rate of alpha (betas (0.5, 0.999) and weight decay
            1e-3 as in DARTS, Liu et al., 2019; their lr 3e-4 over ~20k alpha
            steps, scaled here to ~1k: 6e-3).
        weight_decay: L2 on alpha.
        tau_max: GDAS temperature at the first alpha step, annealed linearly
            to ``tau_min`` at the end (10 -> 0.1, Dong & Yang, 2019).
        tau_min: GDAS temperature at the end of the search.
        cost_weight: Weight of the expected-cost term, ``cost_weight *
            sum_c max(0, log(E[c] / target_c))`` over the reward's targets
            (a differentiable soft limit in the spirit of FBNet, Wu et al.,
            2019, and ProxylessNAS, Cai et al., 2019; 0: off).
        init_from: Handled by the builder (warm start from a finished run).

    Raises:
        ValueError: For a space without a weighted supernet or an unknown mode.
    """

    differentiable = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        mode: str = "darts",
        lr: float = 6e-3,
        weight_decay: float = 1e-3,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        cost_weight: float = 0.1,
    ) -> None:
        super().__init__(space, seed)
        if type(space).__name__ not in SUPPORTED and not any(c.__name__ in SUPPORTED for c in type(space).__mro__):
            raise ValueError(
                f"controller={mode} needs a supernet with a weighted forward; supported spaces: "
                f"macro, macro_paper, macro_detection, nb201 (got {type(space).__name__})"
            )
        if mode not in ("darts", "gdas"):
            raise ValueError(f"controller.mode={mode!r} is unknown; allowed: ['darts', 'gdas']")
        for name, value in (("lr", lr), ("tau_max", tau_max), ("tau_min", tau_min)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"controller.{name} must be a finite number > 0, got {value}")
        if tau_min > tau_max:
            raise ValueError(f"controller.tau_min={tau_min} exceeds controller.tau_max={tau_max}")
        if not (math.isfinite(cost_weight) and cost_weight >= 0) or not (
            math.isfinite(weight_decay) and weight_decay >= 0
        ):
            raise ValueError("controller.cost_weight and controller.weight_decay must be finite and >= 0")
        self.mode, self.tau_max, self.tau_min, self.cost_weight = (
            mode,
            float(tau_max),
            float(tau_min),
            float(cost_weight),
        )
        self.generator = torch.Generator().manual_seed(seed)
        # Small random logits break the symmetry as in DARTS (1e-3 * N(0, 1)).
        self.alphas = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(int(n), generator=self.generator)) for n in space.num_choices
        )
        self.optimizer = torch.optim.Adam(
            self.alphas.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=weight_decay
        )
        self.tau = self.tau_max
        #: Per cost name: (cost of the reference architecture, per decision the cost change of each choice).
        self._cost_tables: dict[str, tuple[float, list[Tensor]]] = {}
        self._targets: dict[str, float] = {}

    # -- the loop's seam --------------------------------------------------------
    def to(self, device: torch.device) -> DifferentiableController:
        """Moves alpha (and its optimiser state) to the supernet's device."""
        self.alphas.to(device)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, Tensor):
                    state[key] = value.to(device)
        self._cost_tables = {k: (base, [t.to(device) for t in table]) for k, (base, table) in self._cost_tables.items()}
        return self

    def set_costs(self, costs: Callable[[Sequence[int]], Mapping[str, float]], targets: Mapping[str, float]) -> None:
        """Builds per-choice cost tables for the expected-cost term of the targets that ``costs`` reports.

        A choice's cost is the change it makes to the reference architecture
        (first choice everywhere): exact for per-operation costs such as
        parameters or a latency table's entries, an approximation where
        choices share modules (skip connections sharing an adapter).
        """
        self._targets = {k: float(v) for k, v in targets.items()}
        if not self._targets or not self.cost_weight:
            return
        device = self.alphas[0].device
        ref = [0] * len(self.space)
        base = dict(costs(ref))
        names = [k for k in self._targets if k in base]
        tables: dict[str, list[list[float]]] = {k: [] for k in names}
        for d, n in enumerate(self.space.num_choices):
            rows = {k: [] for k in names}
            for c in range(int(n)):
                arch = list(ref)
                arch[d] = c
                value = dict(costs(arch)) if c else base
                for k in names:
                    rows[k].append(float(value[k]) - float(base[k]))
            for k in names:
                tables[k].append(rows[k])
        self._cost_tables = {
            k: (float(base[k]), [torch.tensor(r, dtype=torch.float32, device=device) for r in tables[k]]) for k in names
        }

    def set_progress(self, fraction: float) -> None:
        """Anneals the GDAS temperature linearly from ``tau_max`` to ``tau_min`` over the search."""
        fraction = min(1.0, max(0.0, float(fraction)))
        self.tau = self.tau_max - (self.tau_max - self.tau_min) * fraction

    def path_weights(self) -> tuple[list[Tensor], list[list[int]] | None]:
        """Mixture weights of one supernet step and the choices to compute (None: all).

        DARTS: softmax(alpha) on every choice. GDAS: a Gumbel-softmax sample
        per decision, hard one-hot in the forward pass with the soft sample's
        gradient (straight-through); only the sampled choice is computed.
        """
        logits = [self._masked(a, d) for d, a in enumerate(self.alphas)]
        if self.mode == "darts":
            return [torch.softmax(z, dim=-1) for z in logits], None
        weights, active = [], []
        for z in logits:
            # Drawn from the controller's own generator, so a resumed run samples as the uninterrupted one.
            gumbel = -torch.empty(z.shape).exponential_(generator=self.generator).log().to(z.device)
            soft = torch.softmax((z + gumbel) / self.tau, dim=-1)
            k = int(soft.argmax())
            hard = torch.zeros_like(soft)
            hard[k] = 1.0
            weights.append(hard - soft.detach() + soft)
            active.append([k])
        return weights, active

    def arch_step(self, loss: Tensor, weights: Sequence[Tensor]) -> dict[str, float]:
        """One Adam step on alpha from a validation ``loss`` plus the expected-cost term.

        ``weights`` are the mixture weights the loss was computed with (their
        graph leads back to alpha). Returns the cost term's value (0 without targets).
        """
        penalty = self.cost_penalty()
        total = loss + penalty
        grads = torch.autograd.grad(total, list(self.alphas), allow_unused=True)
        for a, g in zip(self.alphas, grads):
            a.grad = torch.zeros_like(a) if g is None else g
        self.optimizer.step()
        return {"cost_penalty": float(penalty.detach())}

    def cost_penalty(self) -> Tensor:
        """``cost_weight * sum_c max(0, log(E[c] / target_c))`` under softmax(alpha) (0 without targets)."""
        total = torch.zeros((), device=self.alphas[0].device)
        if not self._cost_tables:
            return total
        probs = [torch.softmax(self._masked(a, d), dim=-1) for d, a in enumerate(self.alphas)]
        for name, (base, table) in self._cost_tables.items():
            expected = base + sum((p * t).sum() for p, t in zip(probs, table))
            expected = torch.clamp(expected, min=1e-9)
            total = total + torch.relu(torch.log(expected / self._targets[name]))
        return self.cost_weight * total

    # -- Controller -------------------------------------------------------------
    def probabilities(self) -> list[np.ndarray]:
        """softmax(alpha) of every decision (masked choices at 0)."""
        with torch.no_grad():
            return [
                torch.softmax(self._masked(a, d), -1).cpu().numpy().astype(np.float64)
                for d, a in enumerate(self.alphas)
            ]

    def propose(self, n: int) -> list[Arch]:
        """Samples from softmax(alpha), decision by decision, under :attr:`action_mask`."""
        probs = self.probabilities()
        return [self._draw(probs, greedy=False) for _ in range(n)]

    def best_guess(self, n: int) -> list[Arch]:
        """The argmax of alpha (DARTS's derived architecture) first, then samples."""
        probs = self.probabilities()
        return list(dict.fromkeys([self._draw(probs, greedy=True)] + self.propose(max(0, n - 1))))

    def derived(self) -> Arch:
        """The architecture of the largest alpha in every decision (under the masks)."""
        return self._draw(self.probabilities(), greedy=True)

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        """Rewards do not train alpha (gradients do); reports how decided alpha is."""
        archs = check_observation(self.space, archs, rewards)
        probs = self.probabilities()
        entropy = float(np.mean([-(p[p > 0] * np.log(p[p > 0])).sum() for p in probs]))
        return {"alpha_entropy": entropy, "alpha_max_prob": float(np.mean([p.max() for p in probs])), "tau": self.tau}

    def _draw(self, probs: Sequence[np.ndarray], greedy: bool) -> Arch:
        prefix: list[int] = []
        for t, p in enumerate(probs):
            allowed = self.space.masks[t][: len(p)].copy()
            if self.action_mask is not None:
                allowed &= self.action_mask(prefix)[: len(p)]
            q = np.where(allowed, p, 0.0)
            if q.sum() <= 0:  # every allowed choice has underflowed: uniform among them
                q = allowed.astype(np.float64)
            prefix.append(int(np.argmax(q)) if greedy else int(self.rng.choice(len(q), p=q / q.sum())))
        return tuple(prefix)

    def _masked(self, alpha: Tensor, d: int) -> Tensor:
        mask = torch.as_tensor(self.space.masks[d][: alpha.numel()], device=alpha.device)
        return alpha.masked_fill(~mask, float("-inf")) if not bool(mask.all()) else alpha

    # -- persistence ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "alphas": [a.detach().cpu() for a in self.alphas],
            "optimizer": self.optimizer.state_dict(),
            "tau": self.tau,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            for a, saved in zip(self.alphas, state["alphas"]):
                a.copy_(saved.to(a.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.tau = float(state["tau"])
        self.generator.set_state(state["generator"])

    def save_artifacts(self, directory: Path) -> list[Path]:
        """``alphas.json`` (softmax(alpha) per decision, the derived architecture) and ``alphas.png``."""
        from rlnas.utils import write_json_atomic

        probs = self.probabilities()
        derived = self.derived()
        path = Path(directory) / "alphas.json"
        write_json_atomic(
            path,
            {
                "mode": self.mode,
                "derived": list(derived),
                "derived_text": self.space.describe(derived),
                "decisions": [
                    {"name": d.name, "choices": [str(c) for c in d.choices], "probabilities": p.tolist()}
                    for d, p in zip(self.space.decisions, probs)
                ],
            },
        )
        figure_path = Path(directory) / "alphas.png"
        figure = self.figure(f"{self.mode}: softmax(alpha)")
        save_figure(figure, figure_path)
        return [path, figure_path]

    def figure(self, title: str) -> Any:
        """:func:`alpha_figure` of the current softmax(alpha) (for alphas.png and TensorBoard)."""
        decisions = self.space.decisions
        return alpha_figure(
            self.probabilities(), [d.name for d in decisions], [[str(c) for c in d.choices] for d in decisions], title
        )


def alpha_figure(
    probs: Sequence[np.ndarray], names: Sequence[str], choices: Sequence[Sequence[str]], title: str = "softmax(alpha)"
) -> Any:
    """A decision x choice heat map of the architecture distribution (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(p) for p in probs)
    grid = np.full((len(probs), width), np.nan)
    for i, p in enumerate(probs):
        grid[i, : len(p)] = p
    fig, ax = plt.subplots(figsize=(2 + 0.9 * width, 1 + 0.25 * len(probs)), dpi=100)
    image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    labels = choices[int(np.argmax([len(c) for c in choices]))]
    ax.set_xticks(range(width), labels, fontsize=7, rotation=30)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig
