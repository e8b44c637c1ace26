"""The MNIST-1D generator (Greydanus 2020, arXiv 2011.14439), offline and without touching global random state.

Adapted from mnist1d 0.0.2.post1 (``mnist1d/data.py`` and ``mnist1d/transform.py``, The MNIST-1D dataset,
Sam Greydanus, Peter Steinbach and contributors, https://github.com/greydanus/mnist1d), licensed under the Apache
License 2.0; the license text is in LICENSE.mnist1d beside this file. Changes: a local ``np.random.RandomState``
replaces ``np.random.seed`` and the global generator (the draws are the same, in the same order, so the data is
identical to ``mnist1d.data.make_dataset``); no download, pickling or plotting; arguments are keyword defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import interp1d
from scipy.ndimage import gaussian_filter

DEFAULT_ARGS: dict[str, Any] = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": (36, 60),
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}


def templates() -> dict[str, np.ndarray]:
    """The ten 12-point digit templates, whitened and starting at 0."""
    digits = [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ]
    x = np.asarray(digits, dtype=np.float64)
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return {"x": x / 6.0, "t": np.linspace(-5, 5, x.shape[1]) / 6.0, "y": np.arange(10)}


def _interpolate(x: np.ndarray, n: int) -> np.ndarray:
    scale = np.linspace(0, 1, len(x))
    return interp1d(scale, x, axis=0, kind="linear")(np.linspace(0, 1, n))


def _transform(rs: np.random.RandomState, x: np.ndarray, t: np.ndarray, args: dict[str, Any], eps: float = 1e-8):
    low, high = args["padding"]
    pad = low + int(rs.rand() * (high - low + 1))
    new_x = np.concatenate([x + eps, np.zeros(pad)])
    new_x = _interpolate(new_x, args["template_len"] + high)
    new_t = _interpolate(t, args["template_len"] + high)
    new_x *= 1 + args["scale_coeff"] * (rs.rand() - 0.5)
    k = rs.choice(args["max_translation"])
    new_x = np.concatenate([new_x[-k:], new_x[:-k]])

    mask = new_x != 0
    corr_noise = gaussian_filter(args["corr_noise_scale"] * rs.randn(*new_x.shape), 2)
    new_x = mask * new_x + (1 - mask) * corr_noise
    new_x = new_x + args["iid_noise_scale"] * rs.randn(*new_x.shape)

    coeff = args["shear_scale"] * (rs.rand() - 0.5)
    new_x = new_x - coeff * np.linspace(-0.5, 0.5, len(new_x))
    new_x = _interpolate(new_x, args["final_seq_length"])
    new_t = _interpolate(new_t, args["final_seq_length"])
    return new_x, new_t


def make_dataset(**overrides: Any) -> dict[str, np.ndarray]:
    """Generate MNIST-1D as ``mnist1d.data.make_dataset(get_dataset_args())`` does (float64 x of shape (n, L)).

    Returns a dict with ``x``, ``y`` (train), ``x_test``, ``y_test`` and ``t`` (the time axis).
    """
    unknown = set(overrides) - set(DEFAULT_ARGS)
    if unknown:
        raise ValueError(f"mnist1d: unknown arguments {sorted(unknown)}; expected some of {sorted(DEFAULT_ARGS)}")
    args = {**DEFAULT_ARGS, **overrides}
    rs = np.random.RandomState(args["seed"])
    tpl = templates()
    xs, ys = [], []
    per_class = args["num_samples"] // len(tpl["y"])
    new_t = tpl["t"]
    for label in range(len(tpl["y"])):
        for _ in range(per_class):
            x, new_t = _transform(rs, tpl["x"][label], tpl["t"], args)
            xs.append(x)
            ys.append(tpl["y"][label])
    order = rs.permutation(len(ys))
    x_all, y_all = np.stack(xs)[order], np.stack(ys)[order]
    if args["shuffle_seq"]:
        x_all = x_all[..., rs.permutation(args["final_seq_length"])]
    new_t = new_t / x_all.std()
    x_all = (x_all - x_all.mean()) / x_all.std()
    split = int(len(y_all) * args["train_split"])
    return {"x": x_all[:split], "y": y_all[:split], "x_test": x_all[split:], "y_test": y_all[split:], "t": new_t}
