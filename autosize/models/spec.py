"""Architecture descriptions: :class:`ArchSpec` and its JSON form (see :mod:`autosize.models`;
the layers are :mod:`autosize.models.layers`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from autosize.errors import SpecError
from autosize.models.layers import (
    ACTIVATIONS,
    Activation,
    ConvLayer,
    DenseLayer,
    Layer,
    PeriodicEmbedding,
    conv_out,
    embedding_from_dict,
    is_int,
    layer_fields,
    layer_from_dict,
    reject_unknown,
)

__all__ = ["ArchSpec"]

# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class ArchSpec:
    """A complete, JSON-round-trippable description of a network.

    ``layers`` are the hidden layers; the output layer follows from
    ``n_outputs``. All conv layers come before all dense layers. The spec is
    validated on construction: an invalid one raises :class:`SpecError`
    naming the field.
    """

    input_shape: tuple[int, ...]
    n_outputs: int
    layers: tuple[Layer, ...] = ()
    activation: Activation = "relu"
    # Regression only: the head's output is multiplied by target_scale and shifted by
    # target_shift (the training targets' std and mean), so the net learns standardised targets.
    target_shift: float = 0.0
    target_scale: float = 1.0
    # An embedding of the first input columns, in front of the first hidden layer (tables only).
    embedding: PeriodicEmbedding | None = None
    _shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    # What layers[0] (or the head of a linear model) receives: the input, or the embedding's output.
    _in_shape: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "_shapes", self._validate())

    # -- validation -------------------------------------------------------------

    def _validate(self) -> tuple[tuple[int, ...], ...]:
        if not self.input_shape or not all(is_int(d) and d > 0 for d in self.input_shape):
            raise SpecError(f"input_shape: must be positive integers, got {list(self.input_shape)}")
        if len(self.input_shape) not in (1, 3):
            raise SpecError(
                f"input_shape: must be [features] or [channels, height, width], got {list(self.input_shape)}"
            )
        if not is_int(self.n_outputs) or self.n_outputs < 1:
            raise SpecError(f"n_outputs: must be a positive integer, got {self.n_outputs!r}")
        if self.activation not in ACTIVATIONS:
            raise SpecError(
                f"activation: unknown {self.activation!r}; expected one of {', '.join(ACTIVATIONS)}"
            )
        if not (
            isinstance(self.target_scale, int | float)
            and math.isfinite(self.target_scale)
            and self.target_scale > 0
        ):
            raise SpecError(
                f"target_scale: must be a positive finite number, got {self.target_scale!r}"
            )
        if not (isinstance(self.target_shift, int | float) and math.isfinite(self.target_shift)):
            raise SpecError(f"target_shift: must be a finite number, got {self.target_shift!r}")

        shape = self.input_shape
        if self.embedding is not None:
            shape = self._check_embedding(self.embedding)
        object.__setattr__(self, "_in_shape", shape)
        shapes: list[tuple[int, ...]] = []
        seen_dense = False
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}]"
            if not isinstance(layer, DenseLayer | ConvLayer):
                raise SpecError(
                    f"{where}: expected a DenseLayer or ConvLayer, got {type(layer).__name__}"
                )
            if not isinstance(layer.bias, bool) or not isinstance(layer.batchnorm, bool):
                raise SpecError(f"{where}: bias and batchnorm must be true or false")
            if not (isinstance(layer.dropout, int | float) and 0.0 <= layer.dropout < 1.0):
                raise SpecError(f"{where}.dropout: must be in [0, 1), got {layer.dropout!r}")
            if isinstance(layer, DenseLayer):
                if not is_int(layer.width) or layer.width < 1:
                    raise SpecError(
                        f"{where}.width: must be a positive integer, got {layer.width!r}"
                    )
                seen_dense = True
                shape = (layer.width,)
            else:
                if seen_dense:
                    raise SpecError(f"{where}: a conv layer cannot follow a dense layer")
                if len(shape) != 3:
                    raise SpecError(
                        f"{where}: a conv layer needs an image input [C, H, W], got {list(self.input_shape)}"
                    )
                for name in ("channels", "kernel", "pool", "stride"):
                    value = getattr(layer, name)
                    if not is_int(value) or value < 1:
                        raise SpecError(
                            f"{where}.{name}: must be a positive integer, got {value!r}"
                        )
                if layer.padding is None and layer.kernel % 2 == 0:
                    raise SpecError(
                        f"{where}.padding: 'same' padding needs an odd kernel, got kernel {layer.kernel}"
                    )
                if layer.padding is not None and (not is_int(layer.padding) or layer.padding < 0):
                    raise SpecError(
                        f"{where}.padding: must be a non-negative integer, got {layer.padding!r}"
                    )
                h, w = (conv_out(d, layer) for d in shape[1:])
                if h < 1 or w < 1:
                    raise SpecError(
                        f"{where}: spatial size collapses to {max(h, 0)}x{max(w, 0)} (input {shape[1]}x{shape[2]}, "
                        f"kernel {layer.kernel}, stride {layer.stride}, pool {layer.pool})"
                    )
                shape = (layer.channels, h, w)
            shapes.append(shape)
        return tuple(shapes)

    def _check_embedding(self, emb: object) -> tuple[int, ...]:
        """What the first hidden layer receives behind a valid ``emb``, else SpecError."""
        if not isinstance(emb, PeriodicEmbedding):
            raise SpecError(f"embedding: expected a PeriodicEmbedding, got {type(emb).__name__}")
        if len(self.input_shape) != 1:
            raise SpecError(
                f"embedding: needs a table of features, not an input of shape {list(self.input_shape)}"
            )
        for name in ("features", "frequencies", "width"):
            value = getattr(emb, name)
            if not is_int(value) or value < 1:
                raise SpecError(f"embedding.{name}: must be a positive integer, got {value!r}")
        if emb.features > self.input_shape[0]:
            raise SpecError(
                f"embedding.features: {emb.features} columns to embed, but the input has "
                f"{self.input_shape[0]}"
            )
        if not (
            isinstance(emb.sigma, int | float)
            and not isinstance(emb.sigma, bool)
            and math.isfinite(emb.sigma)
            and emb.sigma > 0
        ):
            raise SpecError(f"embedding.sigma: must be a positive number, got {emb.sigma!r}")
        return (emb.out_features + self.input_shape[0] - emb.features,)

    # -- derived facts ------------------------------------------------------------

    def output_shape(self, i: int) -> tuple[int, ...]:
        """Shape (without batch) of hidden layer ``i``'s output, after pooling."""
        return self._shapes[i]

    def in_shape(self, i: int) -> tuple[int, ...]:
        """Shape (without batch) of what hidden layer ``i`` (or the head, ``i == len(layers)``) receives."""
        return self._in_shape if i == 0 else self._shapes[i - 1]

    def flatten_size(self, i: int) -> int:
        """Spatial positions per channel that layer ``i`` (or the head) sees after the flatten.

        1 when its input is not an image. Channel ``c`` owns columns ``c*S ... c*S+S-1``.
        """
        shape = self.in_shape(i)
        return shape[1] * shape[2] if len(shape) == 3 else 1

    def in_features(self, i: int) -> int:
        """Flattened input size of dense layer ``i`` or of the head (``i == len(layers)``)."""
        return math.prod(self.in_shape(i))

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(layer.size for layer in self.layers)

    def summary(self) -> str:
        """One line such as ``conv32-conv64-fc128`` (``linear`` without hidden layers), with
        the embedding first where there is one (``plr6x16-fc32``)."""
        layers = "-".join(layer.tag() for layer in self.layers) or "linear"
        return layers if self.embedding is None else f"{self.embedding.tag()}-{layers}"

    def param_count(self) -> int:
        """Trainable parameters of the built network (gates excluded)."""
        total = 0 if self.embedding is None else self.embedding.param_count()
        for i, layer in enumerate(self.layers):
            fan_in = (
                self.in_shape(i)[0] * layer.kernel**2
                if isinstance(layer, ConvLayer)
                else self.in_features(i)
            )
            total += fan_in * layer.size + (layer.size if layer.bias else 0)
            total += 2 * layer.size if layer.batchnorm else 0
        return total + (self.in_features(self.depth) + 1) * self.n_outputs

    def flops(self) -> int:
        """Floating-point operations per example of one forward pass.

        Counts 2 per multiply-accumulate of the conv and linear layers (the bulk of
        the cost); activations, BatchNorm and pooling are left out (and so are the
        embedding's cosines and sines).
        """
        return sum(self._flop_terms())

    def train_flops(self) -> int:
        """Floating-point operations per example of one training step, counted as
        :meth:`flops` counts: the forward pass, each weight's gradient and each layer's
        input gradient (2x the forward's each), except the input gradient of the part the
        data feeds (the embedding, else the first layer), which training never computes."""
        terms = self._flop_terms()
        return 3 * sum(terms) - terms[0]

    def _flop_terms(self) -> list[int]:
        """Forward FLOPs per example of each weight-carrying part, in order: the embedding
        (where there is one), the layers, the head."""
        emb = self.embedding
        terms = [] if emb is None else [2 * emb.features * 2 * emb.frequencies * emb.width]
        for i, layer in enumerate(self.layers):
            if isinstance(layer, ConvLayer):
                c_in, h, w = self.in_shape(i)
                ho, wo = (conv_out(d, layer, pooled=False) for d in (h, w))
                terms.append(2 * c_in * layer.kernel**2 * layer.channels * ho * wo)
            else:
                terms.append(2 * self.in_features(i) * layer.width)
        return [*terms, 2 * self.in_features(self.depth) * self.n_outputs]

    # -- editing (transforms use these; the spec stays valid or raises) -----------------

    def with_layer(self, i: int, layer: Layer) -> ArchSpec:
        layers = list(self.layers)
        layers[i] = layer
        return replace(self, layers=tuple(layers))

    def with_widths(self, widths: Sequence[int]) -> ArchSpec:
        if len(widths) != self.depth:
            raise SpecError(f"layers: expected {self.depth} widths, got {len(widths)}")
        return replace(
            self,
            layers=tuple(
                layer.resized(int(w)) for layer, w in zip(self.layers, widths, strict=True)
            ),
        )

    def inserted(self, i: int, layer: Layer) -> ArchSpec:
        """A copy with ``layer`` inserted so that it becomes ``layers[i]``."""
        layers = list(self.layers)
        layers.insert(i, layer)
        return replace(self, layers=tuple(layers))

    # -- JSON ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "activation": self.activation,
            "layers": [{"type": layer.type, **layer_fields(layer)} for layer in self.layers],
        }
        if self.target_shift != 0.0 or self.target_scale != 1.0:
            out["target_shift"] = self.target_shift
            out["target_scale"] = self.target_scale
        if self.embedding is not None:
            out["embedding"] = {"type": self.embedding.type, **layer_fields(self.embedding)}
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = "architecture") -> ArchSpec:
        """Build a spec from its JSON form, refusing unknown keys and wrong types.

        ``source`` prefixes error messages (e.g. a file name).
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"{source}: expected a table/object, got {type(data).__name__}")
        allowed = {
            "input_shape",
            "n_outputs",
            "activation",
            "layers",
            "target_shift",
            "target_scale",
            "embedding",
        }
        reject_unknown(data, allowed, source)
        for key in ("input_shape", "n_outputs"):
            if key not in data:
                raise SpecError(f"{source}: missing key {key!r}")
        input_shape = data["input_shape"]
        if not isinstance(input_shape, list | tuple) or not all(is_int(d) for d in input_shape):
            raise SpecError(
                f"{source}: input_shape must be a list of integers, got {input_shape!r}"
            )
        raw_layers = data.get("layers", [])
        if not isinstance(raw_layers, list | tuple):
            raise SpecError(f"{source}: layers must be a list, got {type(raw_layers).__name__}")
        layers = tuple(
            layer_from_dict(raw, f"{source}: layers[{i}]") for i, raw in enumerate(raw_layers)
        )
        # JSON values (json.loads gives Any): ArchSpec checks n_outputs, activation and the
        # targets' ranges itself (_validate); the checks here are of what _validate assumes.
        n_outputs: Any = data["n_outputs"]
        kwargs: dict[str, Any] = {}
        for key in ("activation", "target_shift", "target_scale"):
            if key in data:
                kwargs[key] = data[key]
        if "activation" in kwargs and not isinstance(kwargs["activation"], str):
            raise SpecError(f"{source}: activation must be a string, got {kwargs['activation']!r}")
        for key in ("target_shift", "target_scale"):
            if key in kwargs and (
                isinstance(kwargs[key], bool) or not isinstance(kwargs[key], int | float)
            ):
                raise SpecError(f"{source}: {key} must be a number, got {kwargs[key]!r}")
            if key in kwargs:
                kwargs[key] = float(kwargs[key])
        if data.get("embedding") is not None:
            kwargs["embedding"] = embedding_from_dict(data["embedding"], f"{source}: embedding")
        try:
            return cls(input_shape=tuple(input_shape), n_outputs=n_outputs, layers=layers, **kwargs)
        except SpecError as exc:
            raise SpecError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "architecture") -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=source)
