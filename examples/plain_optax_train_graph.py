"""ng.train_graph with any optax transformation, continued across surgery with its optimiser state.

Run: python examples/plain_optax_train_graph.py
"""

import jax
import optax

import naivega_jax as ng


def main() -> None:
    x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")  # scikit-learn's 8x8 digits, bundled with it
    kgraph, ktrain1, kgrow, ktrain2 = jax.random.split(jax.random.key(0), 4)

    inp = ng.input_vertex("img", shape=(8, 8, 1))
    conv = ng.vertex("conv", ng.Conv(8, 3, activation="relu"), inp)
    flat = ng.vertex("flat", ng.Flatten(), ng.vertex("pool", ng.MaxPool(2), conv))
    hidden = ng.vertex("hidden", ng.Dense(8, activation="relu"), flat)
    graph = ng.build_graph(kgraph, inputs=inp, outputs=ng.vertex("out", ng.Dense(10), hidden))

    # Any optax GradientTransformation trains as it is. Its hyperparameters are constants of the compiled step and
    # the object is the compile cache's key: make it once and pass the same object to every call.
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2, weight_decay=1e-4))

    def report(what, graph):
        loss = ng.evaluate_loss(graph, x_tr, y_tr, optax.softmax_cross_entropy_with_integer_labels)
        print(f"{what:<15} training loss {loss:.4f}, test accuracy {ng.evaluate_accuracy(graph, x_te, y_te):.3f}")

    result = ng.train_graph(ktrain1, graph, x_tr, y_tr, optimiser=tx, batch_size=64, epochs=3)
    report("3 epochs:", result.graph)

    # Quadruple the hidden layer. The graph computes what it did, and remap_opt_state carries AdamW's moments over
    # to the new shapes (zeros for the new neurons), so training goes on where it stopped.
    grown = ng.delta_nout(result.graph, {"hidden": +24}, key=kgrow)
    opt_state = ng.remap_opt_state(result.graph, grown, result.opt_state)
    print(f"hidden layer:   {result.graph.nout('hidden')} -> {grown.nout('hidden')} neurons")
    report("after surgery:", grown)

    result = ng.train_graph(ktrain2, grown, x_tr, y_tr, optimiser=tx, batch_size=64, epochs=3, opt_state=opt_state)
    report("3 more epochs:", result.graph)


if __name__ == "__main__":
    main()
