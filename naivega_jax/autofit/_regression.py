"""What ``fit(task="regression")`` trains and scores with: the squared error, a higher-is-better MSE fitness, and
the fixed affine map that puts a model's outputs in the targets' units."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._errors import ShapeError
from ..evolution import Candidate
from ..graph import INVARIANT, Graph, Op, ParamAxes, register_op
from ..train import evaluate_loss

#: how a regression run's fitness is defined (``summary.json`` says it, in these words)
FITNESS_DEFINITION = (
    "1 / (1 + validation MSE / baseline MSE), the baseline being the validation MSE of predicting the training "
    "mean: 1 is a perfect fit, 0.5 as good as predicting the mean, 0 a failed candidate"
)


def squared_error(outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    """``(outputs - targets) ** 2`` elementwise, for outputs and targets of the same shape (no broadcasting).

    The training engine averages it per example, so the training loss is the mean squared error. Outputs ``(B, 1)``
    against targets ``(B,)`` would broadcast to ``(B, B)`` and train every example against every target: refused.

    Raises:
        ShapeError: the shapes differ.

    Example:
        >>> import numpy as np
        >>> from naivega_jax.autofit import squared_error
        >>> squared_error(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]])).tolist()
        [[1.0], [4.0]]
    """
    if np.shape(outputs) != np.shape(targets):
        raise ShapeError(
            f"squared_error: outputs of shape {tuple(np.shape(outputs))} and targets of shape "
            f"{tuple(np.shape(targets))}; expected the same shape (give vector targets as a column (n, 1))"
        )
    return jnp.square(jnp.asarray(outputs) - jnp.asarray(targets))


@dataclasses.dataclass(frozen=True, eq=False)
class MSEFitness:
    """``1 / (1 + mse / baseline)`` of a candidate's mean squared error on ``data``: higher is better, in (0, 1].

    Scale-free: ``fit`` gives as ``baseline`` the validation MSE of predicting the training mean, so 0.5 means "as
    good as the mean", whatever the targets' units. A non-finite MSE (a diverged model) scores 0, the invalid
    fitness of ``fit``'s training.

    Args:
        data: ``(x, y)``, y of the graph's output shape per example (``(n, T)``).
        baseline: the MSE that scores 0.5; a finite number > 0.
        batch_size: evaluation batch size (``ng.evaluate_loss``).

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> from naivega_jax.autofit import MSEFitness
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(1), inp))
        >>> g = g.replace(params={"d": {"kernel": np.zeros((2, 1), np.float32), "bias": np.ones(1, np.float32)}})
        >>> data = (np.zeros((4, 2), np.float32), np.full((4, 1), 3.0, np.float32))  # MSE (1 - 3) ** 2 = 4
        >>> MSEFitness(data, baseline=4.0)(jax.random.key(0), ng.Candidate(g)).fitness
        0.5
    """

    data: Any = dataclasses.field(repr=False)
    baseline: float
    batch_size: int = 256

    def __post_init__(self):
        if not (isinstance(self.data, (tuple, list)) and len(self.data) == 2):
            raise TypeError(f"MSEFitness: data must be a pair (x, y), got {type(self.data).__name__}")
        baseline = self.baseline
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not 0 < baseline < math.inf:
            raise ValueError(f"MSEFitness: baseline must be a finite number > 0, got {baseline!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"MSEFitness: batch_size must be a positive int, got {self.batch_size!r}")

    def mse(self, graph: Graph) -> float:
        """The mean squared error of ``graph`` on the data (over examples and target columns)."""
        x, y = self.data
        return evaluate_loss(graph, x, y, squared_error, batch_size=self.batch_size)

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        mse = self.mse(candidate.graph)
        fitness = 1.0 / (1.0 + mse / self.baseline) if math.isfinite(mse) else 0.0
        return candidate.replace(fitness=fitness)


def baseline_mse(y_train: ArrayLike, y: ArrayLike) -> float:
    """The MSE on targets ``y`` of predicting the mean of ``y_train`` (per column): what a model must beat.

    Example:
        >>> from naivega_jax.autofit._regression import baseline_mse
        >>> baseline_mse([[0.0], [2.0]], [[1.0], [4.0]])  # the mean 1 predicts 1 and 4 with errors 0 and 3
        4.5
    """
    y_train, y = np.asarray(y_train, np.float64), np.asarray(y, np.float64)
    return float(np.mean((y - y_train.mean(axis=0)) ** 2))


@register_op
@dataclasses.dataclass(frozen=True)
class FixedAffine(Op):
    """``x * scale + offset`` per channel, with ``scale`` and ``offset`` in the graph's state: no parameter, so
    training, weight decay and mutation leave them alone (state is saved, exported and remapped like batch-norm
    statistics). Starts as the identity (``scale`` 1, ``offset`` 0).

    ``fit(task="regression")`` ends its default spaces in one, set to the training targets' standard deviation and
    mean (``scale_targets``): the layers before it learn standardised targets, and the graph predicts in the
    targets' own units.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> from naivega_jax.autofit import FixedAffine
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("a", FixedAffine(), inp))
        >>> g = g.replace(state={"a": {"scale": jnp.array([10.0, 1.0]), "offset": jnp.array([5.0, 0.0])}})
        >>> g(jnp.ones((1, 2))).tolist()
        [[15.0, 1.0]]
    """

    trait: ClassVar[str] = INVARIANT

    def output_shape(self, name, in_shapes):
        if len(in_shapes) != 1:
            raise ShapeError(f"vertex {name!r}: FixedAffine takes one input, got {len(in_shapes)}")
        return in_shapes[0]

    def state_axes(self):
        return {"scale": ParamAxes(out=0, new=1.0), "offset": ParamAxes(out=0, new=0.0)}

    def init(self, rng, in_shapes, weight_init="default"):
        n = in_shapes[0][-1]
        return {}, {"scale": np.ones((n,), np.float32), "offset": np.zeros((n,), np.float32)}

    def apply(self, params, state, xs, *, train, key):
        return xs[0] * state["scale"] + state["offset"], state


@dataclasses.dataclass(frozen=True)
class ScaledSquaredError:
    """``squared_error(outputs, targets) / scale ** 2`` per target column: the squared error in units of each
    column's ``scale`` (``fit``: the training targets' standard deviation), so that the gradients of a graph ending
    in ``FixedAffine`` are those of standardised targets whatever the targets' units (plain SGD would diverge on
    targets in the hundreds otherwise). Hashable, so one compiled step serves every candidate of a run.

    Example:
        >>> import numpy as np
        >>> from naivega_jax.autofit import ScaledSquaredError
        >>> ScaledSquaredError((10.0,))(np.array([[30.0]]), np.array([[10.0]])).tolist()
        [[4.0]]
    """

    scale: tuple[float, ...]

    def __post_init__(self):
        if not self.scale or not all(isinstance(v, float) and 0 < v < math.inf for v in self.scale):
            raise ValueError(f"ScaledSquaredError: scale must be a tuple of finite floats > 0, got {self.scale!r}")

    def __call__(self, outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
        return squared_error(outputs, targets) / jnp.square(jnp.asarray(self.scale, jnp.float32))


#: the name suffix of the regression spaces' last vertex, the ``FixedAffine`` that ``scale_targets`` sets
TARGETS = ".targets"


def target_statistics(y_train: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the training targets ``(n, T)``: the mean and the standard deviation (1 where a column is
    constant, so that it stays a unit)."""
    y_train = np.asarray(y_train, np.float64)
    std = y_train.std(axis=0)
    return y_train.mean(axis=0), np.where(std > 0, std, 1.0)


def scale_targets(graph: Graph, mean: ArrayLike, std: ArrayLike) -> Graph:
    """``graph`` with its output ``FixedAffine`` (named ``...targets``, the last vertex of ``fit``'s regression
    spaces) set to ``x * std + mean``. A graph without one is returned as it is.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> from naivega_jax.autofit import scale_targets, tabular_space
        >>> space = tabular_space(1, task="regression")
        >>> g = ng.sample_graph(jax.random.key(0), space, ng.input_vertex("in", shape=(3,)))
        >>> g = scale_targets(g, [500.0], [50.0])
        >>> out = g.output_names[0]
        >>> out.endswith(".targets"), np.asarray(g.state[out]["offset"]).tolist()
        (True, [500.0])
    """
    state = dict(graph.state)
    for name in graph.output_names:
        if name.endswith(TARGETS) and isinstance(graph.op(name), FixedAffine):
            n = graph.nout(name)
            state[name] = {
                "scale": jnp.asarray(np.broadcast_to(np.asarray(std, np.float32), (n,))),
                "offset": jnp.asarray(np.broadcast_to(np.asarray(mean, np.float32), (n,))),
            }
    return graph.replace(state=state)
