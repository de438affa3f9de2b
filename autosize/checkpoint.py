"""Save and load a network with its architecture in one safetensors file.

The file holds the weights (no pickle: loading never runs code) and, in its
metadata, the :class:`~autosize.models.ArchSpec` as JSON plus any extra
string fields, so a checkpoint is self-describing: weights and description
never drift apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from autosize.errors import StudyError
from autosize.models import ArchSpec, Net, build_model

__all__ = ["load_network", "read_metadata", "save_network"]

SPEC_KEY = "autosize.spec"
FORMAT_KEY = "autosize.format"
FORMAT = "autosize-network/1"


def save_network(
    model: nn.Module, spec: ArchSpec, path: str | Path, *, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``model``'s weights and ``spec`` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = {**(metadata or {}), SPEC_KEY: spec.to_json(indent=None), FORMAT_KEY: FORMAT}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise StudyError(f"{path}: not a readable autosize network file ({exc})") from None


def load_network(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[Net, ArchSpec]:
    """Rebuild the network stored at ``path`` (eval mode) and return it with its spec."""
    meta = read_metadata(path)
    if SPEC_KEY not in meta:
        raise StudyError(
            f"{path}: no architecture in the file's metadata (not written by autosize?)"
        )
    spec = ArchSpec.from_dict(json.loads(meta[SPEC_KEY]), source=str(path))
    model = build_model(spec)
    state = load_file(str(path), device=str(device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise StudyError(f"{path}: weights do not match the architecture ({exc})") from None
    return model.to(device).eval(), spec
