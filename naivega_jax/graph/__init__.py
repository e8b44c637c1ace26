"""The graph: ops, the immutable ``Graph`` pytree, building, applying, summaries, JSON, saving and Flax export."""

from ._activations import activation, activation_names, register_activation
from ._compose import combine, partition, stack, unstack
from ._flax import GraphModule, to_flax
from ._graph import Graph, Vertex, add, apply, build_graph, concat, init_graph, input_vertex, nparams, vertex
from ._io import OverwriteError as OverwriteError  # public as ng.OverwriteError, listed there; io raises it too
from ._io import from_json, load_graph, save_graph, to_json
from ._nnx import NnxGraphModule, from_nnx, to_nnx
from ._ops import (
    ABSORB,
    IMMUTABLE,
    INVARIANT,
    STACK,
    BatchNorm,
    Conv,
    Dense,
    Input,
    Op,
    ParamAxes,
    PartialIdentityInit,
)
from ._ops_shape import Add, AvgPool, Concat, Dropout, Flatten, GlobalPool, MaxPool, Scale, register_op
from ._provenance import derive as derive  # for packages that build graphs from graphs
from ._provenance import remap_like, remap_opt_state
from ._remap import apply_selection
from ._sizes import find_size_cycle, is_size_fixed, size_participants, tied_vertices
from ._solver import NeuronSelection, SolveStats
from ._spec import GraphSpec, VertexSpec
from ._summary import summary
from ._surgery import (
    add_edge,
    delta_nout,
    insert_vertex,
    neuron_selection,
    prune,
    remove_edge,
    remove_vertex,
    resize_kernel,
)
from ._utility import (
    activation_utility,
    default_utility,
    init_activation_utility,
    update_activation_utility,
    utility_ewma,
    utility_probes,
    weight_utility,
)
from ._validate import validate_graph

__all__ = [
    "ABSORB",
    "IMMUTABLE",
    "INVARIANT",
    "STACK",
    "Add",
    "AvgPool",
    "BatchNorm",
    "Concat",
    "Conv",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalPool",
    "Graph",
    "GraphModule",
    "GraphSpec",
    "Input",
    "MaxPool",
    "NeuronSelection",
    "NnxGraphModule",
    "Op",
    "ParamAxes",
    "PartialIdentityInit",
    "Scale",
    "SolveStats",
    "Vertex",
    "VertexSpec",
    "activation",
    "activation_names",
    "activation_utility",
    "add",
    "add_edge",
    "apply",
    "apply_selection",
    "build_graph",
    "combine",
    "concat",
    "default_utility",
    "delta_nout",
    "find_size_cycle",
    "from_json",
    "from_nnx",
    "init_activation_utility",
    "init_graph",
    "input_vertex",
    "insert_vertex",
    "is_size_fixed",
    "load_graph",
    "neuron_selection",
    "nparams",
    "partition",
    "prune",
    "register_activation",
    "register_op",
    "remap_like",
    "remap_opt_state",
    "remove_edge",
    "remove_vertex",
    "resize_kernel",
    "save_graph",
    "size_participants",
    "stack",
    "summary",
    "tied_vertices",
    "to_flax",
    "to_json",
    "to_nnx",
    "update_activation_utility",
    "unstack",
    "utility_ewma",
    "utility_probes",
    "validate_graph",
    "vertex",
    "weight_utility",
]
