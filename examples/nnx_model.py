"""A graph as a flax.nnx module: train it with nnx.Optimizer, then take the trained graph back.

Run: python examples/nnx_model.py
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import naivega_jax as ng


def loss_fn(model, x, y, key):
    logits = model(x, train=True, rngs=key)  # dropout on, batch-norm statistics updated in place
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@nnx.jit
def train_step(model, optimizer, x, y, key):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y, key)
    optimizer.update(model, grads)
    return loss


def main() -> None:
    # scikit-learn's 8x8 digits, bundled with it: 1437 training and 360 test images
    x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")
    kgraph, ktrain = jax.random.split(jax.random.key(0))

    inp = ng.input_vertex("img", shape=(8, 8, 1))
    conv = ng.vertex("conv", ng.Conv(8, 3, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), conv)
    flat = ng.vertex("flat", ng.Flatten(), ng.vertex("pool", ng.MaxPool(2), bn))
    drop = ng.vertex("drop", ng.Dropout(0.2), flat)
    graph = ng.build_graph(kgraph, inputs=inp, outputs=ng.vertex("out", ng.Dense(10), drop))

    model = ng.to_nnx(graph)
    # wrt=nnx.Param: the optimiser trains the parameters, never the batch statistics (nnx.BatchStat)
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    accuracy = lambda m: float(jnp.mean(jnp.argmax(m(x_te), -1) == y_te))
    print(f"before training: test accuracy {accuracy(model):.3f}")

    batch, steps = 64, 300
    for step, key in enumerate(jax.random.split(ktrain, steps)):
        idx = jax.random.choice(key, len(x_tr), (batch,), replace=False)
        loss = train_step(model, optimizer, x_tr[idx], y_tr[idx], jax.random.fold_in(key, 1))
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    print(f"after training:  test accuracy {accuracy(model):.3f}")

    # Back to a graph: same spec, the trained parameters and batch statistics; surgery and ng's tools apply again.
    trained = ng.from_nnx(model)
    same = bool(jnp.allclose(trained(x_te), model(x_te), atol=1e-6))
    print(f"graph back: {ng.nparams(trained)} parameters, computes what the module does: {same}")
    print(f"graph back: test accuracy {float(ng.evaluate_accuracy(trained, x_te, y_te)):.3f}")


if __name__ == "__main__":
    main()
