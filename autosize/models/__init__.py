"""Architecture descriptions (:class:`ArchSpec`) and the networks they build.

An :class:`ArchSpec` describes a feed-forward network completely: the input
shape, the hidden layers (convolutions first, then dense layers), the
activation and the number of outputs. It round-trips through JSON, and that
JSON is what users export and edit::

    {"input_shape": [1, 28, 28], "n_outputs": 10, "activation": "relu",
     "layers": [{"type": "conv", "channels": 32, "kernel": 3, "batchnorm": true, "pool": 2},
                {"type": "dense", "width": 128}]}

:func:`build_model` maps the spec onto modules one to one, so model surgery
(Net2Net, unit removal) can find every tensor a hidden unit owns::

    spec.layers[i]  ->  net.blocks[i]   a ConvBlock or DenseBlock:
        ConvBlock:  conv -> norm -> act -> gate -> pool -> drop
        DenseBlock: linear -> norm -> act -> gate -> drop
    (output)        ->  net.head        nn.Linear(n_features, n_outputs)
    spec.embedding  ->  net.embed       PeriodicFeatures, or None (tables only)

``norm`` is BatchNorm or Identity, ``gate`` is Identity unless compress puts
a gate there, ``pool`` is max-pooling or Identity, ``drop`` is Dropout or
Identity. The input is flattened in front of the first dense block (or the
head), so channel ``c`` of the last conv block owns the flattened columns
``c*S ... c*S+S-1`` of the next layer, ``S`` being the spatial size there
(:meth:`ArchSpec.flatten_size`). For regression the head's output is
rescaled, ``y = head(h) * target_scale + target_shift``, so a network learns
standardised targets and still predicts in the data's own unit.

A table's spec may carry an ``embedding`` (:class:`PeriodicEmbedding`): its first
``features`` columns (the numeric ones) are embedded before the first hidden layer,
which then takes ``features * width`` plus the other columns. Model surgery
never touches it: widening, deepening and compressing act on hidden layers only.
"""

from __future__ import annotations

from autosize.models.layers import (
    ACTIVATIONS,
    IDEMPOTENT_ACTIVATIONS,
    Activation,
    ConvLayer,
    DenseLayer,
    Layer,
    PeriodicEmbedding,
    embedding_from_dict,
    layer_from_dict,
)
from autosize.models.net import (
    Block,
    BlockList,
    ConvBlock,
    DenseBlock,
    Net,
    PeriodicFeatures,
    build_model,
    make_activation,
)
from autosize.models.spec import ArchSpec

__all__ = [
    "ACTIVATIONS",
    "IDEMPOTENT_ACTIVATIONS",
    "Activation",
    "ArchSpec",
    "Block",
    "BlockList",
    "ConvBlock",
    "ConvLayer",
    "DenseBlock",
    "DenseLayer",
    "Layer",
    "Net",
    "PeriodicEmbedding",
    "PeriodicFeatures",
    "build_model",
    "embedding_from_dict",
    "layer_from_dict",
    "make_activation",
]
