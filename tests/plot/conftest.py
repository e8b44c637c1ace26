import jax
import matplotlib.image
import numpy as np
import pytest

import naivega_jax as ng

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def dense_chain(key, widths, name="d"):
    """in(5) -> Dense(w) for each width -> Dense(3): len(widths) + 2 vertices."""
    inp = ng.input_vertex("in", shape=(5,))
    v = inp
    for i, w in enumerate(widths):
        v = ng.vertex(f"{name}{i}", ng.Dense(w, activation="relu"), v)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), v))


@pytest.fixture(scope="module")
def graphs():
    """Three graphs: 2 vertices / 18 params, 3 vertices / 39 params, 4 vertices / 147 params."""
    keys = jax.random.split(jax.random.key(0), 3)
    gs = [dense_chain(keys[0], []), dense_chain(keys[1], [4]), dense_chain(keys[2], [8, 8])]
    assert [len(g.vertex_names) for g in gs] == [2, 3, 4]
    assert [ng.nparams(g) for g in gs] == [18, 39, 147]
    return gs


def assert_png(path, min_bytes=4000):
    """A PNG file with a non-blank image of a reasonable size."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] >= 150 and img.shape[1] >= 150, img.shape
    assert float(np.var(img[..., :3])) > 1e-3, f"{path} looks blank"
    return img
