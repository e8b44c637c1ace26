"""ng.autofit.fit on a regression task: scikit-learn's diabetes data (bundled with it), a small search.

Run: python examples/regression.py
"""

import tempfile

import jax
import numpy as np
from sklearn.datasets import load_diabetes

import naivega_jax as ng


def main() -> None:
    kshuffle, ksearch = jax.random.split(jax.random.key(0))
    x, y = load_diabetes(return_X_y=True)  # 442 patients, 10 features, disease progression after a year
    order = np.asarray(jax.random.permutation(kshuffle, len(x)))
    x, y = x[order].astype(np.float32), y[order].astype(np.float32)
    x_tr, y_tr, x_te, y_te = x[:350], y[:350], x[350:], y[350:]

    # The targets are in the hundreds: standardise them (with training statistics) so learning rates fit.
    mean, std = y_tr.mean(), y_tr.std()
    scale = lambda t: (t - mean) / std

    with tempfile.TemporaryDirectory() as out_dir:
        pop = ng.autofit.fit(
            x_tr,
            scale(y_tr),
            key=ksearch,
            out_dir=out_dir,
            task="regression",
            population_size=4,
            max_generations=2,
            epochs_per_generation=20,
            progress=False,
        )
    best = pop[0]  # best first
    print(f"best: {ng.nparams(best.graph)} parameters, validation fitness {best.fitness:.3f} (0.5 = the mean)")

    # The graph predicts (n, 1) standardised targets; the inputs go in as they are (it standardises them itself).
    pred = np.asarray(best.graph(x_te))[:, 0] * std + mean
    mse = float(np.mean((pred - y_te) ** 2))
    baseline = float(np.mean((y_tr.mean() - y_te) ** 2))
    print(f"test MSE {mse:.1f}, predicting the training mean {baseline:.1f} (ratio {mse / baseline:.2f})")


if __name__ == "__main__":
    main()
