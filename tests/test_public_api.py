import inspect

import naivega_jax as ng


def test_every_public_name_resolves_and_is_documented():
    assert ng.__all__ == sorted(ng.__all__)
    assert len(ng.__all__) == len(set(ng.__all__))
    for name in ng.__all__:
        obj = getattr(ng, name)
        if isinstance(obj, str):
            continue
        doc = inspect.getdoc(obj)
        assert doc and doc.strip(), f"ng.{name} has no docstring"


def test_subpackage_names_are_reexported():
    for sub in (
        ng.graph,
        ng.search,
        ng.mutation,
        ng.train,
        ng.evolution,
        ng.data,
        ng.io,
        ng.plot,
        ng.autofit,
        ng.distributed,
    ):
        for name in sub.__all__:
            assert getattr(ng, name) is getattr(sub, name)


def test_graph_public_names_have_a_runnable_example():
    # the doctest run executes them; here: every graph name documents itself with one
    for name in ng.graph.__all__:
        obj = getattr(ng.graph, name)
        if isinstance(obj, str):
            continue
        assert ">>>" in (inspect.getdoc(obj) or ""), f"ng.{name} has no example in its docstring"


def test_graph_contract_names_exist():
    contract = [
        "input_vertex",
        "vertex",
        "concat",
        "add",
        "build_graph",
        "apply",
        "Graph",
        "nparams",
        "summary",
        "Dense",
        "Conv",
        "BatchNorm",
        "MaxPool",
        "AvgPool",
        "GlobalPool",
        "Flatten",
        "Dropout",
        "Scale",
        "to_json",
        "from_json",
        "save_graph",
        "load_graph",
        "to_flax",
        "GraphError",
        "ShapeError",
        "SizeChangeError",
        "NaiveGAError",
        "activation",
        "register_activation",
        "GraphSpec",
    ]
    missing = [name for name in contract if name not in ng.__all__]
    assert missing == []
    assert {"identity", "relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "leaky_relu", "softplus"} <= set(
        ng.activation_names()
    )
