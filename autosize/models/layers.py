"""The layers an :class:`~autosize.models.spec.ArchSpec` is made of (dense, conv, the
periodic embedding of a table's numeric columns), the activations, and their JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal, TypeGuard, get_args

from autosize.errors import SpecError

__all__ = [
    "ACTIVATIONS",
    "IDEMPOTENT_ACTIVATIONS",
    "Activation",
    "ConvLayer",
    "DenseLayer",
    "Layer",
    "PeriodicEmbedding",
    "conv_out",
    "embedding_from_dict",
    "is_int",
    "layer_fields",
    "layer_from_dict",
    "reject_unknown",
]

Activation = Literal[
    "relu", "relu6", "hardtanh", "identity", "tanh", "sigmoid", "gelu", "silu", "leaky_relu"
]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
# phi(phi(x)) == phi(x): the activations Net2DeeperNet can insert an identity layer under.
IDEMPOTENT_ACTIVATIONS: frozenset[str] = frozenset({"relu", "relu6", "hardtanh", "identity"})


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class DenseLayer:
    """A fully connected hidden layer of ``width`` units."""

    type: ClassVar[str] = "dense"
    width: int
    batchnorm: bool = False
    dropout: float = 0.0
    bias: bool = True

    @property
    def size(self) -> int:
        """Number of units (the dimension Net2Net widens and compress shrinks)."""
        return self.width

    def resized(self, size: int) -> DenseLayer:
        return replace(self, width=size)

    def tag(self) -> str:
        return f"fc{self.width}"


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution with ``channels`` output channels, then optional max-pooling.

    ``padding=None`` means "same" padding for odd kernels (``kernel // 2``);
    ``pool`` is the max-pool window and stride (1 = no pooling).
    """

    type: ClassVar[str] = "conv"
    channels: int
    kernel: int = 3
    batchnorm: bool = False
    pool: int = 1
    padding: int | None = None
    stride: int = 1
    dropout: float = 0.0
    bias: bool = True

    @property
    def size(self) -> int:
        return self.channels

    @property
    def pad(self) -> int:
        return self.kernel // 2 if self.padding is None else self.padding

    def resized(self, size: int) -> ConvLayer:
        return replace(self, channels=size)

    def tag(self) -> str:
        return f"conv{self.channels}"


@dataclass(frozen=True)
class PeriodicEmbedding:
    """An embedding of each of the first ``features`` input columns (numeric ones) before the
    first hidden layer: "PLR" of Gorishniy, Rubachev & Babenko, *On Embeddings for Numerical
    Features in Tabular Deep Learning* (NeurIPS 2022).

    Column ``j``'s value ``x`` becomes ``relu(W_j [cos(2 pi c_j x), sin(2 pi c_j x)] + b_j)``:
    ``frequencies`` learned frequencies ``c_j`` (initialised from N(0, ``sigma``^2)), then a
    linear map of its own to ``width`` values. The other columns (one-hot categories, say) pass
    through unchanged, after the embedded ones. MLPs on tables with skewed or
    non-monotone numeric columns learn their effects far more easily this way.
    """

    type: ClassVar[str] = "periodic"
    features: int
    frequencies: int = 16
    width: int = 16
    sigma: float = 1.0

    @property
    def out_features(self) -> int:
        """How many values the embedded columns become."""
        return self.features * self.width

    def param_count(self) -> int:
        return self.features * (self.frequencies + (2 * self.frequencies + 1) * self.width)

    def tag(self) -> str:
        return f"plr{self.features}x{self.width}"


Layer = DenseLayer | ConvLayer
_LAYER_TYPES: dict[str, type[DenseLayer] | type[ConvLayer]] = {
    "dense": DenseLayer,
    "conv": ConvLayer,
}


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def conv_out(d: int, layer: ConvLayer, *, pooled: bool = True) -> int:
    out = (d + 2 * layer.pad - layer.kernel) // layer.stride + 1
    return out // layer.pool if pooled else out


def layer_fields(layer: Layer | PeriodicEmbedding) -> dict[str, object]:
    return {f.name: getattr(layer, f.name) for f in fields(layer)}


def reject_unknown(data: Mapping[str, object], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _typed_kwargs(raw: Mapping[str, object], cls: type, where: str) -> dict[str, Any]:
    """``raw``'s keys but ``type`` as keyword arguments of the dataclass ``cls``: unknown keys
    are refused, and each value is checked against its field's annotation (``int``, ``float``,
    ``bool``, any of them ``| None``); a float field given an integer gets a float."""
    kinds = {f.name: str(f.type) for f in fields(cls)}
    reject_unknown(raw, {*kinds, "type"}, where)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        kind = kinds[key].removesuffix(" | None")
        if value is None and kinds[key] != kind:
            kwargs[key] = None
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        ok = {"bool": isinstance(value, bool), "float": number}.get(kind, is_int(value))
        if not ok:
            expected = {"bool": "true or false", "float": "a number"}.get(kind, "an integer")
            raise SpecError(f"{where}.{key}: expected {expected}, got {value!r}")
        kwargs[key] = float(value) if kind == "float" else value  # type: ignore[arg-type]
    return kwargs


def embedding_from_dict(raw: object, where: str) -> PeriodicEmbedding:
    """A :class:`PeriodicEmbedding` from its JSON form (``{"type": "periodic", "features": 6,
    ...}``), refusing unknown keys and wrong types; its ranges are the spec's to check."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a table/object, got {type(raw).__name__}")
    if raw.get("type", "periodic") != "periodic":
        raise SpecError(f"{where}.type: unknown embedding {raw.get('type')!r}; expected 'periodic'")
    if "features" not in raw:
        raise SpecError(f"{where}: missing key 'features'")
    return PeriodicEmbedding(**_typed_kwargs(raw, PeriodicEmbedding, where))


def layer_from_dict(raw: object, where: str) -> Layer:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a table/object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in _LAYER_TYPES:
        raise SpecError(f"{where}.type: unknown layer type {kind!r}; expected 'dense' or 'conv'")
    cls = _LAYER_TYPES[kind]
    kwargs = _typed_kwargs(raw, cls, where)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from None
