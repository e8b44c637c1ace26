"""AutoFlux's default search space for classifiers of images ``(H, W, C)`` and sequences ``(L, C)``.

The structure follows NaiveGAflux's ``initial_archspace`` (its AutoFlux application): two blocks of convolutional stages
(each a plain repeat, a fork or a residual of conv / conv-batchnorm / batchnorm-conv layers, then a downsampling),
and a head that is either a global pool and dense layers or a conv to the classes and a global pool. Widths are
scaled down by ``scale`` so that the default run fits a small machine.
"""

from __future__ import annotations

import math

from ..search import (
    ArchSpace,
    ArchSpaceChain,
    BatchNormSpace,
    ConvSpace,
    DenseSpace,
    ForkArchSpace,
    GlobalPoolSpace,
    PoolSpace,
    RepeatArchSpace,
    ResidualArchSpace,
    VertexSpace,
)

ACTIVATIONS = ("identity", "relu", "elu", "selu")
#: the smallest spatial size ``default_space`` accepts: each of its two blocks halves it at least once
MIN_SPATIAL_SIZE = 4
#: mutation types still allowed on the shielded output layers (upstream: kernel size and activation)
OUTPUT_ALLOWED = ("KernelSizeMutation", "ActivationFunctionMutation")


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


def default_space(in_shape: tuple[int, ...], nclasses: int, *, scale: float = 0.25):
    """AutoFlux's initial architecture space for an input of feature shape ``in_shape`` and ``nclasses`` outputs.

    ``scale`` multiplies the upstream widths (upstream: block one 8-256, block two 32-512, head 256-4096; the
    default 0.25 gives 2-64, 8-128 and 64-1024). The number of downsampling stages is bounded so the feature map
    never shrinks below 1.

    Each of the two blocks ends in at least one downsampling (a window of 2, stride 2, no padding), so every
    spatial axis of ``in_shape`` must be at least 4; smaller inputs are refused.

    Raises:
        ValueError: ``in_shape`` has no spatial axis or one smaller than 4 (the message says what to do: pad, or
            a space without downsampling), or ``nclasses < 2``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(40, 1))
        >>> g = ng.sample_graph(jax.random.key(0), ng.autofit.default_space((40, 1), 10), inp)
        >>> g.nout(g.output_names[0])
        10
    """
    if len(in_shape) < 2:
        raise ValueError(f"default_space: in_shape must have spatial axes (L, C) or (H, W, C), got {in_shape!r}")
    if nclasses < 2:
        raise ValueError(f"default_space: nclasses must be >= 2, got {nclasses!r}")
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
        VertexSpace(DenseSpace(nclasses, "identity"), shielded=OUTPUT_ALLOWED),
    )
    head_conv = ArchSpaceChain(
        VertexSpace(ConvSpace(outsizes=nclasses, kernel_sizes=[1, 3, 5]), shielded=OUTPUT_ALLOWED),
        GlobalPoolSpace(),
    )
    return ArchSpaceChain(block1, block2, ArchSpace(head_dense, head_conv))


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
