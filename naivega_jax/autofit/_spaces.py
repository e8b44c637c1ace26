"""AutoFlux's default search spaces: images ``(H, W, C)`` and sequences ``(L, C)``, and MLPs for vectors ``(F,)``.

The structure of the convolutional space follows NaiveGAflux's ``initial_archspace`` (its AutoFlux application): two
blocks of convolutional stages (each a plain repeat, a fork or a residual of conv / conv-batchnorm / batchnorm-conv
layers, then a downsampling), and a head that is either a global pool and dense layers or a conv to the classes and a
global pool. Widths are scaled down by ``scale`` so that the default run fits a small machine.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ..graph import BatchNorm, Dropout, Flatten, Graph
from ..search import (
    ArchSpace,
    ArchSpaceChain,
    BatchNormSpace,
    ConvSpace,
    DenseSpace,
    ForkArchSpace,
    FunctionSpace,
    GlobalPoolSpace,
    PoolSpace,
    RepeatArchSpace,
    ResidualArchSpace,
    VertexSpace,
)
from ._regression import TARGETS, FixedAffine

ACTIVATIONS = ("identity", "relu", "elu", "selu")
#: the smallest spatial size ``default_space`` accepts: each of its two blocks halves it at least once
MIN_SPATIAL_SIZE = 4
#: mutation types still allowed on the shielded output layers (upstream: kernel size and activation)
OUTPUT_ALLOWED = ("KernelSizeMutation", "ActivationFunctionMutation")
#: what ``fit`` searches for: class labels (``nclasses`` logits) or real-valued targets (one output per column)
TASKS = ("classification", "regression")
#: the name suffix of the tabular space's first vertex, the batch norm that standardises the raw features
STANDARDISE = ".standardise"


def check_task(task: object, where: str) -> str:
    """``task`` if it is one of ``TASKS``; else a one-line ``ValueError`` naming it and the choices."""
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"{where}: task must be one of {TASKS}, got {task!r}")
    return task


def _check_outputs(nclasses: object, task: str, where: str) -> None:
    low = 2 if task == "classification" else 1
    if isinstance(nclasses, bool) or not isinstance(nclasses, (int, np.integer)) or nclasses < low:
        what = "nclasses" if task == "classification" else "nclasses (the number of target columns)"
        raise ValueError(f"{where}: {what} must be an int >= {low} for task={task!r}, got {nclasses!r}")


def _output_shield(task: str):
    # a regression output stays linear: an activation on it would bound what the model can predict
    return OUTPUT_ALLOWED if task == "classification" else True


def _in_target_units(space, task: str):
    """Regression: ``space`` then a ``FixedAffine`` (``...targets``, shielded) that ``fit`` sets to the training
    targets' standard deviation and mean, so the layers before it learn standardised targets."""
    if task == "classification":
        return space
    return ArchSpaceChain(space, FunctionSpace(FixedAffine(), name_suffix=TARGETS, shielded=True))


def _pow2(lo: int, hi: int, scale: float) -> list[int]:
    return sorted({max(2, round(2**e * scale)) for e in range(lo, hi + 1)})


def conv_layer_space(outsizes, kernel_sizes, activations=ACTIVATIONS):
    """One of {conv, conv then batch-norm, batch-norm then conv} (upstream ``convspace``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.autofit.conv_layer_space([8], [3])
        >>> g = ng.sample_graph(jax.random.key(0), space, ng.input_vertex("in", shape=(6, 2)))
        >>> g.nout(g.output_names[0])
        8
    """
    conv = VertexSpace(ConvSpace(outsizes=outsizes, kernel_sizes=kernel_sizes, activations=activations))
    conv_id = VertexSpace(ConvSpace(outsizes=outsizes, kernel_sizes=kernel_sizes, activations="identity"))
    bn = VertexSpace(BatchNormSpace(*activations))
    return ArchSpace(conv, ArchSpaceChain(conv_id, bn), ArchSpaceChain(bn, conv))


def rep_fork_res(space, max_paths: int = 3):
    """One of a 1-2 repeat, a fork of 1-``max_paths`` repeats, or a residual around a repeat (upstream).

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.autofit.rep_fork_res(ng.autofit.conv_layer_space([8], [3]))
        >>> g = ng.sample_graph(jax.random.key(1), space, ng.input_vertex("in", shape=(6, 2)))
        >>> g.shape(g.output_names[0])[0]
        6
    """
    rep = RepeatArchSpace(space, [1, 2])
    return ArchSpace(rep, ForkArchSpace(rep, list(range(1, max_paths + 1))), ResidualArchSpace(rep))


def downsample_space(outsizes):
    """Max pool 2, mean pool 2, or a stride-2 kernel-2 convolution (upstream's downsampling choices).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(6, 2))
        >>> g = ng.sample_graph(jax.random.key(0), ng.autofit.downsample_space([4]), inp)
        >>> g.shape(g.output_names[0])[0]
        3
    """
    pool = VertexSpace(PoolSpace(window_sizes=[2], strides=[2], kinds=("max", "mean")))
    conv = VertexSpace(
        ConvSpace(outsizes=outsizes, kernel_sizes=[2], strides=[2], paddings="VALID", activations=ACTIVATIONS)
    )
    return ArchSpace(pool, conv)


def default_space(
    in_shape: tuple[int, ...],
    nclasses: int,
    *,
    scale: float = 0.25,
    task: str = "classification",
    flatten_head: bool = False,
):
    """AutoFlux's initial architecture space for an input of feature shape ``in_shape`` and ``nclasses`` outputs.

    Vectors (``in_shape`` of one axis, ``(F,)``) get ``tabular_space``; images and sequences the convolutional
    space below. ``task="regression"``: ``nclasses`` is the number of target columns (1 for a vector of targets),
    and the output layer is shielded from every mutation, so it stays linear (``identity``); a ``FixedAffine``
    after it, which ``fit`` sets to the training targets' standard deviation and mean (``scale_targets``), puts
    the predictions in the targets' units.

    ``scale`` multiplies the upstream widths (upstream: block one 8-256, block two 32-512, head 256-4096; the
    default 0.25 gives 2-64, 8-128 and 64-1024). The number of downsampling stages is bounded so the feature map
    never shrinks below 1.

    Each of the two blocks ends in at least one downsampling (a window of 2, stride 2, no padding), so every
    spatial axis of ``in_shape`` must be at least 4; smaller inputs are refused.

    ``flatten_head=True`` adds a third head, the one of the CNN people write by hand: the feature map flattened
    (``ng.Flatten``) into 1-2 dense layers (``scale`` times 128-1024 units) and the output layer. The vertex before
    the flatten keeps its width (a flatten's size is fixed); every other mutation and crossover applies as before.

    Raises:
        ValueError: ``in_shape`` has a spatial axis smaller than 4 (the message says what to do: pad, or a space
            without downsampling), ``nclasses < 2`` (``< 1`` for regression), or an unknown ``task``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(40, 1))
        >>> g = ng.sample_graph(jax.random.key(0), ng.autofit.default_space((40, 1), 10), inp)
        >>> g.nout(g.output_names[0])
        10
    """
    task = check_task(task, "default_space")
    _check_outputs(nclasses, task, "default_space")
    if len(in_shape) == 1:
        return tabular_space(nclasses, scale=scale, task=task)
    if len(in_shape) < 1:
        raise ValueError(f"default_space: in_shape must be (F,), (L, C) or (H, W, C), got {in_shape!r}")
    if min(in_shape[:-1]) < MIN_SPATIAL_SIZE:
        raise ValueError(
            f"default_space: in_shape {tuple(in_shape)!r} is too small: its spatial size "
            f"{'x'.join(map(str, in_shape[:-1]))} does not survive the space's two downsamplings by 2, which need at "
            f"least {MIN_SPATIAL_SIZE} along every spatial axis; pad x to that, or pass a space= without "
            f"downsampling, e.g. ng.ArchSpaceChain(ng.autofit.conv_layer_space([16], [1, 3]), ng.GlobalPoolSpace(), "
            f"ng.autofit.mlp_space({nclasses}))"
        )
    max_reps = max(1, min(6, math.floor(math.log2(min(in_shape[:-1])))))
    outs1, outs2 = _pow2(3, 8, scale), _pow2(5, 9, scale)
    block1 = RepeatArchSpace(
        ArchSpaceChain(rep_fork_res(conv_layer_space(outs1, [1, 3, 5, 7])), downsample_space(outs1)),
        list(range(1, max(1, max_reps // 2) + 1)),
    )
    block2 = RepeatArchSpace(
        ArchSpaceChain(rep_fork_res(conv_layer_space(outs2, [1, 3, 5])), downsample_space(outs2)),
        list(range(1, max(1, max_reps - max_reps // 2) + 1)),
    )
    head_dense = ArchSpaceChain(
        GlobalPoolSpace(),
        RepeatArchSpace(VertexSpace(DenseSpace(_pow2(8, 12, scale), ACTIVATIONS)), [0, 1, 2]),
        VertexSpace(DenseSpace(nclasses, "identity"), shielded=_output_shield(task)),
    )
    head_conv = ArchSpaceChain(
        VertexSpace(ConvSpace(outsizes=nclasses, kernel_sizes=[1, 3, 5]), shielded=_output_shield(task)),
        GlobalPoolSpace(),
    )
    # the head of the CNN a user writes by hand: the feature map flattened into 1-2 dense layers (upstream has only
    # the two pooled heads, which lose where in the input a feature was)
    head_flat = ArchSpaceChain(
        FunctionSpace(Flatten(), name_suffix=".flatten"),
        RepeatArchSpace(VertexSpace(DenseSpace(_pow2(7, 10, scale), ACTIVATIONS)), [1, 2]),
        VertexSpace(DenseSpace(nclasses, "identity"), shielded=_output_shield(task)),
    )
    heads = (head_dense, head_conv, head_flat) if flatten_head else (head_dense, head_conv)
    return _in_target_units(ArchSpaceChain(block1, block2, ArchSpace(*heads)), task)


#: the conventional CNN's training settings: the defaults of Keras's ``fit`` and ``Adam`` (batch size 32, 1e-3)
CONVENTIONAL_BATCH_SIZE = 32
CONVENTIONAL_LEARNING_RATE = 1e-3
#: the conventional CNN flattens the feature map its two stages leave when it has at most this many positions
#: (8 x 8: Fashion-MNIST's 28 x 28 leaves 7 x 7), and pools it globally when larger, which a dense layer could not
#: take at a reasonable size
CONVENTIONAL_MAX_FLATTEN = 64


def conventional_space(in_shape: tuple[int, ...], nclasses: int, *, task: str = "classification"):
    """The CNN people write by hand for small images, as a space with one choice per vertex.

    A 3x3 convolution of 32 units (ReLU), a max pool of 2, a 3x3 convolution of 64 units (ReLU), a max pool of 2,
    the feature map flattened (``ng.Flatten``; a global average pool when it has more than
    ``CONVENTIONAL_MAX_FLATTEN`` positions), a dense layer of 128 units (ReLU) and the output layer (``nclasses``
    units, shielded as in ``default_space``; ``task="regression"`` as there too). Each of these layers is one of
    ``default_space``'s choices at its default scale (the flatten is its ``flatten_head`` option), so the graph
    mutates and crosses over with the members drawn from it. On a ``(28, 28, 1)`` input it has 421,642 parameters.
    It works on sequences ``(L, C)`` too, with 1-D convolutions.

    ``fit`` and ``random_search`` put one member drawn from it (trained with ``Adam(CONVENTIONAL_LEARNING_RATE)`` at
    batch size ``CONVENTIONAL_BATCH_SIZE``) into the first generation of an image search (``default_members``), so
    the search always sees the model a user would otherwise write, and has to beat it to replace it.

    Raises:
        ValueError: ``in_shape`` is not ``(H, W, C)`` or ``(L, C)`` with every spatial axis at least 4, or as
            ``default_space`` says of ``nclasses`` and ``task``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.autofit.conventional_space((28, 28, 1), 10)
        >>> g = ng.sample_graph(jax.random.key(0), space, ng.input_vertex("in", shape=(28, 28, 1)))
        >>> [type(g.op(n)).__name__ for n in g.vertex_names][1:], ng.nparams(g)
        (['Conv', 'MaxPool', 'Conv', 'MaxPool', 'Flatten', 'Dense', 'Dense'], 421642)
    """
    task = check_task(task, "conventional_space")
    _check_outputs(nclasses, task, "conventional_space")
    if len(in_shape) not in (2, 3) or min(in_shape[:-1]) < MIN_SPATIAL_SIZE:
        raise ValueError(
            f"conventional_space: in_shape must be (H, W, C) or (L, C) with every spatial axis at least "
            f"{MIN_SPATIAL_SIZE} (two pools of 2), got {tuple(in_shape)!r}"
        )
    left = math.prod(s // 4 for s in in_shape[:-1])
    pool = VertexSpace(PoolSpace(window_sizes=[2], strides=[2], kinds="max"))
    if left <= CONVENTIONAL_MAX_FLATTEN:
        head: Any = FunctionSpace(Flatten(), name_suffix=".flatten")
    else:
        head = GlobalPoolSpace("mean")
    space = ArchSpaceChain(
        VertexSpace(ConvSpace(outsizes=[32], kernel_sizes=[3], activations="relu")),
        pool,
        VertexSpace(ConvSpace(outsizes=[64], kernel_sizes=[3], activations="relu")),
        pool,
        head,
        VertexSpace(DenseSpace([128], "relu")),
        VertexSpace(DenseSpace(nclasses, "identity"), shielded=_output_shield(task)),
    )
    return _in_target_units(space, task)


def default_members(in_shape: tuple[int, ...], nclasses: int, *, task: str = "classification") -> tuple[Any, ...]:
    """What ``fit`` and ``random_search`` put into a new run's first generation beside the members they draw, by
    default (their ``initial_members=None``): for images ``(H, W, C)``, ``conventional_space``; for sequences and
    vectors, nothing.

    Sequences get none because what it does there has not been measured: the benchmarks of sequences (MNIST-1D)
    ran without it.

    Example:
        >>> from naivega_jax.autofit import default_members
        >>> len(default_members((28, 28, 1), 10)), len(default_members((40, 1), 10))
        (1, 0)
    """
    if len(in_shape) != 3:
        return ()
    return (conventional_space(in_shape, nclasses, task=task),)


def mlp_space(nclasses: int, *, scale: float = 0.25):
    """A dense-only space for flat vectors: 1-3 dense layers then the output layer.

    Example:
        >>> import jax, naivega_jax as ng
        >>> g = ng.sample_graph(jax.random.key(0), ng.autofit.mlp_space(3), ng.input_vertex("in", shape=(5,)))
        >>> g.nout(g.output_names[0])
        3
    """
    hidden = RepeatArchSpace(VertexSpace(DenseSpace(_pow2(6, 10, scale), ACTIVATIONS)), [1, 2, 3])
    return ArchSpaceChain(hidden, VertexSpace(DenseSpace(nclasses, "identity"), shielded=OUTPUT_ALLOWED))


def tabular_space(nclasses: int, *, scale: float = 0.25, task: str = "classification"):
    """The default space for vectors ``(F,)``: a standardising batch norm, 1-3 hidden layers, the output layer.

    The first vertex (named ``...standardise``) is a batch norm with no activation, shielded from every mutation:
    it standardises the raw features inside the graph, so a model takes the data as it comes. ``fit`` sets its
    running mean and variance to the training data's before any training (``standardise_inputs``), so that
    inference is right from the first generation on; training keeps them close (they follow the batches of the
    same data). Each hidden layer is a dense layer (widths ``scale`` times upstream's 64-1024, so 16-256 by
    default; upstream's activations), alone, followed by a batch norm, or followed by dropout (0.1 or 0.3). The
    output is a dense layer of ``nclasses`` units with no activation (shielded as in ``default_space``;
    ``task="regression"``: ``nclasses`` target columns, shielded from every mutation).

    Example:
        >>> import jax, naivega_jax as ng
        >>> g = ng.sample_graph(jax.random.key(0), ng.autofit.tabular_space(2), ng.input_vertex("in", shape=(5,)))
        >>> [type(g.op(n)).__name__ for n in g.vertex_names][:2], g.nout(g.output_names[0])
        (['Input', 'BatchNorm'], 2)
    """
    task = check_task(task, "tabular_space")
    _check_outputs(nclasses, task, "tabular_space")
    dense = VertexSpace(DenseSpace(_pow2(6, 10, scale), ACTIVATIONS))
    layer = ArchSpace(
        dense,
        ArchSpaceChain(dense, VertexSpace(BatchNormSpace(*ACTIVATIONS))),
        ArchSpaceChain(dense, FunctionSpace(Dropout(0.1), Dropout(0.3), name_suffix=".dropout")),
    )
    space = ArchSpaceChain(
        FunctionSpace(BatchNorm(), name_suffix=STANDARDISE, shielded=True),
        RepeatArchSpace(layer, [1, 2, 3]),
        VertexSpace(DenseSpace(nclasses, "identity"), shielded=_output_shield(task)),
    )
    return _in_target_units(space, task)


def standardise_inputs(graph: Graph, mean: ArrayLike, var: ArrayLike) -> Graph:
    """``graph`` with the running statistics of its standardising vertex (``tabular_space``'s first) set to
    ``mean`` and ``var`` (per feature; ``fit`` gives the training data's), so that it computes
    ``(x - mean) / sqrt(var + eps)`` on raw inputs from the start. A graph without one is returned as it is.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> from naivega_jax.autofit import standardise_inputs, tabular_space
        >>> g = ng.sample_graph(jax.random.key(0), tabular_space(2), ng.input_vertex("in", shape=(3,)))
        >>> g = standardise_inputs(g, [10.0, 20.0, 30.0], [4.0, 4.0, 4.0])
        >>> first = g.outputs("in")[0]
        >>> np.asarray(g.state[first]["mean"]).tolist(), first.endswith(".standardise")
        ([10.0, 20.0, 30.0], True)
    """
    state = dict(graph.state)
    for inp in graph.input_names:
        for name in graph.outputs(inp):
            if name.endswith(STANDARDISE) and isinstance(graph.op(name), BatchNorm):
                n = graph.nout(name)
                values = {
                    k: np.broadcast_to(np.asarray(v, np.float32), (n,)).copy()
                    for k, v in (("mean", mean), ("var", var))
                }
                state[name] = {k: jnp.asarray(v) for k, v in values.items()}
    return graph.replace(state=state)
