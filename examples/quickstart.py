"""Builds a small graph, trains it a few hundred steps with optax, widens a layer and prints the graph.

Run: python examples/quickstart.py
"""

import jax
import jax.numpy as jnp
import optax

import naivega_jax as ng


def main() -> None:
    key = jax.random.key(0)
    kdata, kgraph = jax.random.split(key)
    x = jax.random.normal(kdata, (512, 5))
    y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32) + (x[:, 2] > 0.5).astype(jnp.int32)

    inp = ng.input_vertex("in", shape=(5,))
    d1 = ng.vertex("d1", ng.Dense(16, activation="relu"), inp)
    d2 = ng.vertex("d2", ng.Dense(16, activation="relu"), d1)
    merged = ng.concat("cat", d1, d2)
    out = ng.vertex("out", ng.Dense(3), merged)
    graph = ng.build_graph(kgraph, inputs=inp, outputs=out)
    print(ng.summary(graph))

    opt = optax.adam(1e-2)
    opt_state = opt.init(graph.params)

    @jax.jit
    def step(graph, opt_state, x, y):
        def loss_fn(params):
            logits = graph.replace(params=params)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(graph.params)
        updates, opt_state = opt.update(grads, opt_state, graph.params)
        return graph.replace(params=optax.apply_updates(graph.params, updates)), opt_state, loss

    for i in range(301):
        graph, opt_state, loss = step(graph, opt_state, x, y)
        if i % 100 == 0:
            acc = jnp.mean(jnp.argmax(graph(x), -1) == y)
            print(f"step {i:4d}  loss {float(loss):.4f}  train accuracy {float(acc):.3f}")


if __name__ == "__main__":
    main()
