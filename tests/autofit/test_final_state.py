"""The final phase continues the optimiser state: from the candidate's kept state, through its learning-rate steps."""

import jax
import numpy as np
import optax

import naivega_jax as ng
from naivega_jax.autofit._final import train_best

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 6)).astype(np.float32)
Y = (X[:, 0] - X[:, 2] > 0).astype(np.int32)
TRAIN, VAL = (X[:64], Y[:64]), (X[64:], Y[64:])
LOSS = optax.softmax_cross_entropy_with_integer_labels


def candidate(key, optimiser):
    inp = ng.input_vertex("in", shape=(6,))
    h = ng.vertex("h", ng.Dense(8, "relu"), inp)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("o", ng.Dense(2), h))
    score = lambda k, c: c.replace(fitness=ng.evaluate_accuracy(c.graph, *VAL))
    f = ng.TrainThenFitness(TRAIN, fitness=score, epochs=2, keep_optimiser_state=True)
    return f(key, ng.Candidate(g, optimiser=optimiser, batch_size=16))


def test_the_final_steps_continue_the_kept_state_and_each_other(key):
    c = candidate(key, ng.AdaGrad(0.1))
    assert c.opt_state is not None
    _, record = train_best(key, c, TRAIN, VAL, loss=LOSS, epochs=2)
    assert [s["learning_rate_factor"] for s in record["steps"]] == [1.0, 0.3]
    settings = {"loss": LOSS, "batch_size": 16, "epochs": 1}
    r1 = ng.train_graph(
        jax.random.fold_in(key, 0), c.graph, *TRAIN, optimiser=ng.AdaGrad(0.1), opt_state=c.opt_state, **settings
    )
    r2 = ng.train_graph(
        jax.random.fold_in(key, 1),
        r1.graph,
        *TRAIN,
        optimiser=ng.AdaGrad(0.1 * 0.3),
        opt_state=r1.opt_state,
        **settings,
    )
    fresh = ng.train_graph(jax.random.fold_in(key, 0), c.graph, *TRAIN, optimiser=ng.AdaGrad(0.1), **settings)
    want = [ng.evaluate_accuracy(r.graph, *VAL) for r in (r1, r2)]
    assert [s["validation_accuracy"] for s in record["steps"]] == want
    # a fresh state would have trained differently
    diff = np.max(np.abs(np.asarray(fresh.graph.params["h"]["kernel"]) - np.asarray(r1.graph.params["h"]["kernel"])))
    assert diff > 1e-3


def test_a_kept_state_of_another_optimiser_is_not_used(key):
    c = candidate(key, ng.Adam(0.01))
    other = c.replace(optimiser=ng.SGD(0.1))  # its kept Adam state does not fit SGD: the phase starts fresh
    _, record = train_best(key, other, TRAIN, VAL, loss=LOSS, epochs=1)
    _, fresh = train_best(key, other.replace(opt_state=None), TRAIN, VAL, loss=LOSS, epochs=1)
    assert record["epochs"] == 1
    assert record["steps"][0]["validation_accuracy"] == fresh["steps"][0]["validation_accuracy"]
