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


SUBPACKAGES = ("graph", "search", "mutation", "train", "evolution", "data", "io", "plot", "autofit", "distributed")


def test_the_top_level_is_the_core_and_every_other_name_lives_in_its_subpackage():
    # every public attribute but submodules imported later (naivega_jax.cli) is listed, and they are few
    public = [n for n in dir(ng) if not n.startswith("_") and not inspect.ismodule(getattr(ng, n))]
    assert set(public) <= set(ng.__all__)
    assert len(ng.__all__) <= 150
    owners = {}
    for sub in SUBPACKAGES:
        module = getattr(ng, sub)
        for name in module.__all__:
            owners.setdefault(name, []).append(module)
            assert getattr(module, name) is not None
    for name in ng.__all__:
        if name in SUBPACKAGES or name == "datasets":
            continue
        # a top-level name is its subpackage's object, not a second definition
        assert name in owners or name in ng._errors.__all__ or name == "OverwriteError", name
        assert all(getattr(m, name) is getattr(ng, name) for m in owners.get(name, ()))
    # application helpers are reached through their subpackage, not the top level
    for name in ("fit", "format_duration", "ProgressHandler", "RunProgress", "format_summary", "make_executor"):
        assert not hasattr(ng, name), name


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
    missing = [name for name in contract if name not in ng.__all__ and name not in ng.graph.__all__]
    assert missing == []
    assert {"identity", "relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "leaky_relu", "softplus"} <= set(
        ng.graph.activation_names()
    )
