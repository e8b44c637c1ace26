"""A graph inside your own flax.linen Module, an ensemble of it by jax.vmap, and the members back as graphs.

Run: python examples/flax_linen.py
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import naivega_jax as ng


class Classifier(nn.Module):
    body: nn.Module  # the graph's module; its variables sit under "body"

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(self.body(x))


def main() -> None:
    x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")
    x_tr, x_te = x_tr.reshape(-1, 64), x_te.reshape(-1, 64)  # the 8x8 images as 64 features
    kgraph, kinit, kpop = jax.random.split(jax.random.key(0), 3)

    inp = ng.input_vertex("in", shape=(64,))
    hidden = ng.vertex("hidden", ng.Dense(32, activation="relu"), inp)
    graph = ng.build_graph(kgraph, inputs=inp, outputs=ng.vertex("features", ng.Dense(16, activation="relu"), hidden))
    module, variables = ng.to_flax(graph)
    model = Classifier(body=module)

    # One classifier around the graph as it is: its weights go in under "body".
    single = model.init(kinit, x_tr[:1])
    single = {"params": {**single["params"], "body": variables["params"]}}
    features = model.apply(single, x_te, method=lambda m, x: m.body(x))
    print(f"the body computes what the graph does: {bool(np.allclose(features, graph(x_te), atol=1e-6))}")

    # An ensemble of 8: jax.vmap(model.init) gives 8 heads (and bodies) from 8 keys in one call. The bodies are
    # replaced by a population of graphs made by hand, stacked along a leading axis with ng.stack.
    keys = jax.random.split(kpop, 8)
    ensemble = jax.vmap(model.init, in_axes=(0, None))(keys, x_tr[:1])
    population = [ng.graph.init_graph(k, graph.spec) for k in keys]
    params = {**ensemble["params"], "body": ng.stack(population).params}

    opt = optax.adam(1e-2)

    def step(params, opt_state, x, y):
        def loss_fn(params):
            logits = model.apply({"params": params}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    train_all = jax.jit(jax.vmap(step, in_axes=(0, 0, None, None)))  # every member, one step, one call
    opt_state = jax.vmap(opt.init)(params)
    for _ in range(60):
        params, opt_state, losses = train_all(params, opt_state, x_tr, y_tr)
    print("member losses:", " ".join(f"{float(v):.3f}" for v in losses))

    probs = jax.nn.softmax(jax.vmap(model.apply, in_axes=(0, None))({"params": params}, x_te))  # (8, n, 10)
    accs = [float(jnp.mean(jnp.argmax(p, -1) == y_te)) for p in probs]
    print("member test accuracies:", " ".join(f"{a:.3f}" for a in accs), f"(mean {np.mean(accs):.3f})")
    print(f"ensemble test accuracy: {float(jnp.mean(jnp.argmax(probs.mean(0), -1) == y_te)):.3f}")

    # The trained bodies back as 8 ordinary graphs (for surgery, ng.save_graph, a search): ng.unstack.
    trained = ng.unstack(graph.replace(params=params["body"]))
    best = trained[int(np.argmax(accs))]
    print(f"best member's body: {ng.nparams(best)} parameters, features {best(x_te[:2]).shape}")


if __name__ == "__main__":
    main()
