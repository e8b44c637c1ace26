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
