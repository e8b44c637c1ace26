"""A hand-written optax loop on a graph, with surgery half-way: Adam's moments follow the new neurons.

Run: python examples/optax_loop.py
"""

import jax
import jax.numpy as jnp
import optax

import naivega_jax as ng

opt = optax.adam(1e-2)


def cross_entropy(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@jax.jit
def train_step(graph, opt_state, x, y, key):
    # rest holds the batch-norm running statistics: jax.grad and optax never see them.
    trainable, rest = ng.partition(graph)

    def loss_fn(trainable):
        logits, new = ng.apply(ng.combine(trainable, rest), x, train=True, key=key)
        return cross_entropy(logits, y), new

    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    # The optimiser state is kept for graph.params (a dict), the tree ng.remap_opt_state maps after surgery.
    updates, opt_state = opt.update(grads.params, opt_state, trainable.params)
    return new.replace(params=optax.apply_updates(trainable.params, updates)), opt_state, loss


def train(key, graph, opt_state, x, y, steps):
    for k in jax.random.split(key, steps):
        graph, opt_state, _ = train_step(graph, opt_state, x, y, k)
    return graph, opt_state


def main() -> None:
    kdata, kgraph, ktrain1, kgrow, ktrain2 = jax.random.split(jax.random.key(0), 5)
    x = jax.random.normal(kdata, (512, 5))
    y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32) + (x[:, 2] > 0.5).astype(jnp.int32)

    inp = ng.input_vertex("in", shape=(5,))
    d1 = ng.vertex("d1", ng.Dense(4, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d1)
    d2 = ng.vertex("d2", ng.Dense(16, activation="relu"), bn)
    graph = ng.build_graph(kgraph, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), d2))
    opt_state = opt.init(graph.params)
    print(f"start:          loss {float(cross_entropy(graph(x), y)):.4f}, d1 has {graph.nout('d1')} neurons")

    graph, opt_state = train(ktrain1, graph, opt_state, x, y, steps=150)
    before = float(cross_entropy(graph(x), y))
    print(f"150 steps:      loss {before:.4f}")

    # Widen d1 from 4 to 12 neurons: the batch norm follows, d2 reads 12 inputs, and the new neurons' fan-out is
    # zero, so the graph computes what it did. remap_opt_state keeps Adam's moments (and its step count) for the
    # kept neurons and gives the new ones zeros, so the next update fits the new shapes.
    grown = ng.delta_nout(graph, {"d1": +8}, key=kgrow)
    opt_state = ng.remap_opt_state(graph, grown, opt_state)
    after = float(cross_entropy(grown(x), y))
    print(f"after surgery:  loss {after:.4f}, d1 has {grown.nout('d1')} neurons")

    grown, opt_state = train(ktrain2, grown, opt_state, x, y, steps=150)
    final = float(cross_entropy(grown(x), y))
    print(f"150 more steps: loss {final:.4f}")


if __name__ == "__main__":
    main()
