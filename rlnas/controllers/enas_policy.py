"""The ENAS controller's policy: an LSTM that samples one decision per step (Pham et al., 2018).

Per decision kind a head and an embedding; skip connections are scored by
attention over the previous layers' anchors, with the skip-density penalty of
the paper. :class:`~rlnas.controllers.enas.ENASController` trains it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlnas.spaces.base import SearchSpace


class ENASPolicy(nn.Module):
    """LSTM over the previous decision's embedding, one softmax head per decision kind.

    Args:
        space: The search space; decisions of the same kind share a head and an
            embedding table sized to the kind's largest decision.
        lstm_size: Hidden size of the LSTM cell.
        temperature: Logits are divided by it (ENAS ``controller_temperature``).
        tanh_constant: Logits become ``c * tanh(logits)`` (ENAS logit clipping).
        skip_kind: Decision kind whose choice 1 means "skip connection on".
        skip_target: Prior probability of a skip connection in the KL penalty.
    """

    def __init__(
        self,
        space: SearchSpace,
        lstm_size: int = 64,
        temperature: float | None = None,
        tanh_constant: float | None = 1.5,
        skip_kind: str = "skip",
        skip_target: float = 0.4,
    ) -> None:
        super().__init__()
        self.decisions = space.decisions
        sizes = {k: max(d.num_choices for d in space.decisions if d.kind == k) for k in space.kinds}
        self.g_emb = nn.Parameter(torch.empty(1, lstm_size))
        # ENAS's skip attention reads per-layer anchors, which tell the
        # controller where it is; heads shared across layers get that from a
        # learned embedding of the decision's position added to the input.
        self.position = nn.Parameter(torch.empty(len(space.decisions), lstm_size))
        self.embeddings = nn.ModuleDict({k: nn.Embedding(n, lstm_size) for k, n in sizes.items()})
        self.heads = nn.ModuleDict({k: nn.Linear(lstm_size, n, bias=False) for k, n in sizes.items()})
        # nn.LSTM (not LSTMCell): scoring known sequences runs in one fused call.
        self.lstm = nn.LSTM(lstm_size, lstm_size, batch_first=True)
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.skip_kind = skip_kind
        self.skip_target = skip_target
        # ENAS initialises every controller weight uniformly in [-0.1, 0.1].
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)
        # Per kind: its steps, and which of the kind's head outputs each step may use.
        self._steps: dict[str, tuple[Tensor, Tensor]] = {}
        for k, n in sizes.items():
            steps = [t for t, d in enumerate(self.decisions) if d.kind == k]
            valid = torch.tensor([[c < self.decisions[t].num_choices for c in range(n)] for t in steps])
            self._steps[k] = (torch.tensor(steps), valid)
        # ENAS averages the skip KL over all skip decisions (reduce_mean), so its
        # weight does not grow with depth.
        self._num_skips = sum(1 for d in self.decisions if d.kind == skip_kind and d.num_choices == 2)

    def _logits(self, h: Tensor, t: int) -> Tensor:
        d = self.decisions[t]
        # Slicing the kind's head to this decision's choices is the action mask.
        logits = self.heads[d.kind](h)[:, : d.num_choices]  # (B, n_t)
        if self.temperature:
            logits = logits / self.temperature
        if self.tanh_constant:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def forward(
        self,
        batch_size: int,
        actions: Tensor | None = None,
        generator: torch.Generator | None = None,
        greedy: bool = False,
        mask_fn: Callable[[Sequence[int]], np.ndarray] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Samples (or scores the given) action sequences.

        Args:
            batch_size: Number of sequences ``B``.
            actions: (B, T) actions to score; sampled when ``None``.
            generator: Generator for sampling.
            greedy: Take the most likely action instead of sampling.
            mask_fn: Extra action mask given a prefix (e.g. hard cost limits).

        Returns:
            actions (B, T), log-probability (B,), entropy (B,) and skip KL penalty (B,),
            the KL averaged over the skip decisions.
        """
        if actions is not None:
            return self.score(actions, mask_fn)
        h = self.g_emb.new_zeros(batch_size, self.g_emb.shape[1])
        c = torch.zeros_like(h)
        # One cell step with the LSTM's own weights (cheaper than a length-1 nn.LSTM call).
        lstm = self.lstm
        weights = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
        inp = self.g_emb.expand(batch_size, -1)
        taken, log_prob, entropy, skip_kl = [], 0.0, 0.0, 0.0
        q = self.skip_target
        for t, d in enumerate(self.decisions):
            h, c = torch.lstm_cell(inp + self.position[t], (h, c), *weights)
            logits = self._logits(h, t)
            if mask_fn is not None:
                prefixes = torch.stack(taken, dim=1).tolist() if taken else [[] for _ in range(batch_size)]
                allowed = np.stack([mask_fn(p)[: d.num_choices] for p in prefixes])
                logits = logits.masked_fill(~torch.as_tensor(allowed), float("-inf"))
            logp = F.log_softmax(logits, dim=-1)
            probs = logp.exp()
            if greedy:
                a = probs.argmax(dim=-1)
            else:
                a = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            taken.append(a)
            log_prob = log_prob + logp.gather(1, a[:, None]).squeeze(1)
            entropy = entropy - (probs * logp.clamp_min(-1e9)).sum(dim=-1)
            if d.kind == self.skip_kind and d.num_choices == 2:
                # KL(Bernoulli(p) || Bernoulli(q)) keeps the skip density near q (ENAS, sec. 2.3).
                p = probs[:, 1].clamp(1e-6, 1 - 1e-6)
                skip_kl = skip_kl + p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
            inp = self.embeddings[d.kind](a)
        zeros = inp.new_zeros(batch_size)
        skip_kl = skip_kl / max(1, self._num_skips)
        return torch.stack(taken, dim=1), log_prob + zeros, entropy + zeros, skip_kl + zeros

    def score(
        self, actions: Tensor, mask_fn: Callable[[Sequence[int]], np.ndarray] | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Log-probability, entropy and skip penalty of known action sequences (B, T).

        Teacher forcing: every LSTM input is known, so the whole sequence runs
        in one LSTM call and each kind's head in one matrix product; equal to
        what sampling computed step by step.
        """
        B, T = actions.shape
        H = self.g_emb.shape[1]
        x = self.g_emb.new_empty(B, T, H)
        x[:, 0] = self.g_emb
        for kind, (steps, _) in self._steps.items():
            prev = steps[steps < T - 1]
            if len(prev):
                x[:, prev + 1] = self.embeddings[kind](actions[:, prev])
        hs, _ = self.lstm(x + self.position[:T])  # (B, T, H)
        extra = None
        if mask_fn is not None:
            rows = actions.tolist()
            extra = torch.as_tensor(np.stack([[mask_fn(r[:t]) for t in range(T)] for r in rows]))  # (B, T, max)
        log_prob = entropy = skip_kl = hs.new_zeros(B)
        q = self.skip_target
        for kind, (steps, valid) in self._steps.items():
            logits = self.heads[kind](hs[:, steps])  # (B, n, size)
            if self.temperature:
                logits = logits / self.temperature
            if self.tanh_constant:
                logits = self.tanh_constant * torch.tanh(logits)
            allowed = valid[None].expand(B, -1, -1)
            if extra is not None:
                allowed = allowed & extra[:, steps, : valid.shape[1]]
            logp = F.log_softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
            probs = logp.exp()
            log_prob = log_prob + logp.gather(2, actions[:, steps, None]).squeeze(2).sum(1)
            entropy = entropy - (probs * logp.clamp_min(-1e9)).sum(dim=(1, 2))
            if kind == self.skip_kind and valid.shape[1] == 2:
                p = probs[..., 1].clamp(1e-6, 1 - 1e-6)
                skip_kl = skip_kl + (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum(1)
        return actions, log_prob, entropy, skip_kl / max(1, self._num_skips)
