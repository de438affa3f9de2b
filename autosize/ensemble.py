"""An ensemble of exported networks: the mean of their predictions as one module.

For classification the members' class probabilities are averaged and the module returns
their logarithm, so that ``softmax`` of its output is the mean probability and ``argmax`` the
class with the highest mean (what ``predict`` and ``predict_proba`` read); for regression it
returns the mean value. It is an ordinary module: ``Predictor``, the ONNX exporter and
``torch.no_grad`` inference treat it as one network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """The mean of ``members``' predictions (see the module docstring)."""

    def __init__(self, members: Sequence[nn.Module], *, classification: bool) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.classification = classification

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x) for m in self.members]
        if not self.classification:
            return torch.stack(outs).mean(dim=0)
        # log of the mean probability, computed in log space (no underflow to -inf)
        logp = torch.stack([torch.log_softmax(o, dim=1) for o in outs])
        return torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(len(outs))))
