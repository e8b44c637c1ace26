"""Fixtures shared by the compile tests: Gaussian blobs around one-hot centres, and a one-hidden-layer MLP. Each
test file gives its own input width, so its graphs never share executables with another file's."""

import jax
import numpy as np

import naivega_jax as ng


def blobs(n, features, seed=0):
    """``n`` examples of 3 classes; class ``c`` centred on 3 along input axis ``c``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = (rng.normal(size=(n, features)) + 3.0 * np.eye(3, features)[y]).astype(np.float32)
    return x, y


def mlp(hidden, features, seed=0):
    inp = ng.input_vertex("in", shape=(features,))
    h = ng.vertex("h", ng.Dense(hidden, "relu"), inp)
    return ng.build_graph(jax.random.key(seed), inputs=inp, outputs=ng.vertex("out", ng.Dense(3), h))


def leaves(graph):
    """All parameters of ``graph`` as one host vector."""
    return np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(jax.device_get(graph.params))])
