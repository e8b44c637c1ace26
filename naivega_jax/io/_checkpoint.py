"""Populations on disk: one atomic directory per checkpoint, readable JSON beside one orbax array.

Layout of a checkpoint directory::

    population.json   format, generation, the evolution key's bits, free-form run state (``extra``), the distinct
                      graph specs (JSON), and per candidate: spec index, optimiser spec, batch size, fitness,
                      generation, lineage, info, and where its arrays are in the packed vector
    arrays/           orbax: ONE float32 vector holding every candidate's params, state and kept optimiser state
                      (orbax costs ~1 ms per leaf: one leaf instead of thousands keeps a checkpoint of 50
                      candidates in tens of ms)

The JSON records a SHA-256 of itself and the packed vector together (``_digest``), so any change to either, a
flipped key bit or fitness as much as a damaged array, is detected on load; every graph is then checked against its
arrays, and anything that does not decode is reported as a ``CheckpointError``. A run directory
keeps checkpoints under ``checkpoints/gen_NNNNNN`` and names the newest complete one in ``checkpoints/LATEST``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import NaiveGAError
from .._files import write_text_atomic
from .._json import json_safe
from .._random import key_bits
from ..evolution import Candidate, Population
from ..graph import Graph, from_json, to_json, validate_graph
from ..graph.internal import Artifact, atomic_directory, check_replaceable, load_arrays, save_arrays
from ..train import Optimiser, optimiser_from_dict
from ..train.internal import opt_state_shapes

FORMAT = "naivega_jax.population/2"
# still read: its SHA-256 covered only the packed arrays
FORMAT_ARRAYS_HASH = "naivega_jax.population/1"
CHECKPOINT = Artifact(
    "a population checkpoint (population.json and arrays/)", "population.json", (FORMAT, FORMAT_ARRAYS_HASH)
)
CHECKPOINTS = "checkpoints"
LATEST = "LATEST"


class CheckpointError(NaiveGAError):
    """A checkpoint is missing, incomplete or damaged.

    Example:
        >>> import naivega_jax as ng
        >>> issubclass(ng.CheckpointError, ng.NaiveGAError)
        True
    """


def _opt_leaves(c: Candidate) -> list[np.ndarray]:
    """The leaves of ``c.opt_state`` to save: all of them, or none when the state cannot be rebuilt on load (no
    optimiser spec to take its structure from) or a leaf would not survive float32 storage exactly."""
    if c.opt_state is None or not isinstance(c.optimiser, Optimiser):
        return []
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(c.opt_state)]
    if not all(np.array_equal(a.astype(np.float32).astype(a.dtype), a) for a in leaves):
        return []
    return leaves


def _pack(candidates: tuple[Candidate, ...]) -> tuple[np.ndarray, list[list[list[Any]]]]:
    chunks, layouts, offset = [], [], 0
    for c in candidates:
        layout = []
        for group, tree in (("params", c.graph.params), ("state", c.graph.state)):
            for vertex in sorted(tree):
                for name in sorted(tree[vertex]):
                    a = np.asarray(tree[vertex][name], dtype=np.float32)
                    layout.append([group, vertex, name, list(a.shape), offset])
                    chunks.append(a.ravel())
                    offset += a.size
        for i, leaf in enumerate(_opt_leaves(c)):
            # the optimiser state's leaves in order; the structure comes back from the optimiser spec on load
            layout.append([_OPT, str(leaf.dtype), str(i), list(leaf.shape), offset])
            chunks.append(leaf.astype(np.float32).ravel())
            offset += leaf.size
        layouts.append(layout)
    packed = np.concatenate(chunks) if chunks else np.zeros((0,), np.float32)
    return packed, layouts


_OPT = "opt_state"
_OPT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int32", "int64", "uint32", "bool")


def _unpack(packed: np.ndarray, layout: list[list[Any]]) -> tuple[dict, dict, list[np.ndarray]]:
    """Host views into ``packed`` (nothing copied but optimiser-state leaves of other dtypes) and the optimiser
    state's leaves in order; raises ``ValueError`` on a layout that does not fit it."""
    trees: dict[str, dict[str, dict[str, np.ndarray]]] = {"params": {}, "state": {}}
    opt: list[np.ndarray] = []
    for group, vertex, name, shape, offset in layout:
        if group not in (*trees, _OPT) or not all(isinstance(n, int) and n >= 0 for n in [*shape, offset]):
            raise ValueError(f"bad array entry {[group, vertex, name, shape, offset]!r}")
        size = math.prod(shape)
        if offset + size > packed.size:
            raise ValueError(f"array {vertex}/{name} at {offset} of size {size} ends past the {packed.size} stored")
        values = packed[offset : offset + size].reshape(shape)
        if group == _OPT:
            if vertex not in _OPT_DTYPES:
                raise ValueError(f"optimiser-state leaf {name!r} has dtype {vertex!r}, not one of {_OPT_DTYPES}")
            if name != str(len(opt)):
                raise ValueError(f"optimiser-state leaf {name!r} out of order (expected {len(opt)})")
            opt.append(values.astype(np.dtype(vertex), copy=False))
        else:
            trees[group].setdefault(vertex, {})[name] = values
    return trees["params"], trees["state"], opt


def _opt_state(optimiser: Any, params: dict, leaves: list[np.ndarray]) -> Any:
    """The optimiser state rebuilt from its saved ``leaves`` and the structure ``optimiser`` gives for ``params``."""
    if not leaves:
        return None
    if not isinstance(optimiser, Optimiser):
        raise ValueError("an optimiser state is stored for a candidate without an optimiser spec")
    expected = opt_state_shapes(optimiser, params)  # the structure train_graph takes it in
    want, treedef = jax.tree_util.tree_flatten(expected)
    if len(want) != len(leaves) or any(w.shape != a.shape for w, a in zip(want, leaves)):
        raise ValueError(f"the stored optimiser state does not fit {type(optimiser).__name__}'s state for its graph")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a, w.dtype) for w, a in zip(want, leaves)])


def _digest(body: Mapping[str, Any], packed: np.ndarray) -> str:
    """SHA-256 of the document (without its ``sha256`` field, as canonical JSON) followed by the packed arrays."""
    h = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    h.update(np.ascontiguousarray(packed, dtype="<f4").tobytes())
    return h.hexdigest()


def save_population(
    path: str | os.PathLike,
    population: Population,
    *,
    key: jax.Array | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes ``population`` to the directory ``path`` atomically (readers never see a half-written one).

    Args:
        path: a new path, an empty directory, or a checkpoint saved earlier (replaced once the new one is
            complete). Anything else there raises ``ng.OverwriteError`` before anything is written.
        population: the population, with its candidates' graphs, optimiser specs, fitness, lineage and kept
            optimiser states (``Candidate.opt_state``; saved for candidates with an optimiser spec, whose state
            structure it gives back on load; a candidate without one loads with a fresh state).
        key: the evolution key to resume from, if any.
        extra: more JSON-friendly run state (data-iterator position, settings).

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.Population([ng.Candidate(g, optimiser=ng.Adam(1e-3), fitness=0.5)])
        >>> path = ng.save_population(tempfile.mkdtemp() + "/pop", pop)
        >>> ng.load_population(path)[0].fitness
        0.5
    """
    if not isinstance(population, Population):
        raise TypeError(f"save_population: population must be an ng.Population, got {type(population).__name__}")
    for i, c in enumerate(population.candidates):
        if c.optimiser is not None and not isinstance(c.optimiser, Optimiser):
            raise TypeError(
                f"save_population: candidate {i}'s optimiser is {type(c.optimiser).__name__}, which a checkpoint "
                "cannot hold (it would load as the default optimiser); give candidates optimiser specs (ng.Adam, ...)"
            )
    packed, layouts = _pack(population.candidates)
    specs: dict[Any, int] = {}
    members = []
    for c, layout in zip(population.candidates, layouts):
        index = specs.setdefault(c.graph.spec, len(specs))
        opt = c.optimiser
        members.append(
            {
                "spec": index,
                "optimiser": opt.to_dict() if isinstance(opt, Optimiser) else None,
                "batch_size": c.batch_size,
                "fitness": json_safe(c.fitness),
                "generation": c.generation,
                "lineage": json_safe(list(c.lineage)),
                "info": json_safe(dict(c.info)),
                "arrays": layout,
            }
        )
    body = {
        "format": FORMAT,
        "generation": population.generation,
        "key": None if key is None else list(key_bits(key)),
        "extra": json_safe(dict(extra or {})),
        "specs": [json.loads(to_json(s)) for s in specs],
        "candidates": members,
        "arrays_size": int(packed.size),
    }
    body = json.loads(json.dumps(body))  # hashed as a reader will see it: tuples as lists, keys as strings
    document = {**body, "sha256": _digest(body, packed)}

    def write(tmp: Path) -> None:
        save_arrays(tmp / "arrays", {"packed": packed})
        (tmp / "population.json").write_text(json.dumps(document, indent=1))

    def replaces(p: Path) -> None:
        check_replaceable(p, CHECKPOINT, "save_population")

    return atomic_directory(path, write, replaces=replaces)


def _fitness_from_json(value: Any) -> float | None:
    return None if value is None else float(value)


def load_checkpoint(path: str | os.PathLike) -> tuple[Population, jax.Array | None, dict[str, Any]]:
    """Reads a checkpoint written by ``save_population``: ``(population, key or None, extra)``.

    Raises ``CheckpointError`` naming the path if it is missing, incomplete or damaged: a checksum mismatch (any
    change to population.json or the arrays), graphs whose arrays do not fit their specs, or fields that do not
    decode.

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.Population([ng.Candidate(g)])
        >>> path = ng.save_population(tempfile.mkdtemp() + "/p", pop, key=jax.random.key(7))
        >>> pop, key, extra = ng.io.load_checkpoint(path)
        >>> bool((jax.random.key_data(key) == jax.random.key_data(jax.random.key(7))).all())
        True
    """
    path = Path(path)
    doc_file = path / "population.json"
    try:
        document = json.loads(doc_file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{str(path)!r} is not a population checkpoint (no population.json)") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged: population.json unreadable ({e})") from None
    fmt = document.get("format") if isinstance(document, dict) else None
    if fmt not in (FORMAT, FORMAT_ARRAYS_HASH):
        raise CheckpointError(f"checkpoint {str(path)!r} has format {fmt!r}, expected {FORMAT!r}")
    try:
        packed = np.asarray(load_arrays(path / "arrays")["packed"], dtype=np.float32)
    except Exception as e:  # orbax raises many types for a damaged directory
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged: arrays unreadable ({type(e).__name__})") from None
    if not _checksum_matches(document, packed):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: population.json and its arrays do not match the recorded checksum"
        )
    try:
        return _decode(document, packed)
    except Exception as e:  # whatever a malformed document raises, the checkpoint is unusable: say so, one line
        text = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: population.json does not decode ({type(e).__name__}: {text})"
        ) from None


def _checksum_matches(document: dict[str, Any], packed: np.ndarray) -> bool:
    if document.get("arrays_size") != packed.size:
        return False
    if document["format"] == FORMAT_ARRAYS_HASH:
        return hashlib.sha256(packed.tobytes()).hexdigest() == document.get("arrays_sha256")
    body = {k: v for k, v in document.items() if k != "sha256"}
    return document.get("sha256") == _digest(body, packed)


def _to_device(tree: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, jax.Array]]:
    return {v: {k: jnp.asarray(a) for k, a in arrays.items()} for v, arrays in tree.items()}


def _decode(document: dict[str, Any], packed: np.ndarray) -> tuple[Population, jax.Array | None, dict[str, Any]]:
    specs = [from_json(s) for s in document["specs"]]
    candidates = []
    for m in document["candidates"]:
        index = m["spec"]
        if not (isinstance(index, int) and 0 <= index < len(specs)):
            raise IndexError(f"spec index {index!r} is not one of the {len(specs)} specs")
        params, state, opt_leaves = _unpack(packed, m["arrays"])
        # checked on host views, before anything is copied to the device
        validate_graph(Graph(specs[index], params, state))
        optimiser = None if m["optimiser"] is None else optimiser_from_dict(m["optimiser"])
        candidates.append(
            Candidate(
                Graph(specs[index], _to_device(params), _to_device(state)),
                optimiser=optimiser,
                opt_state=_opt_state(optimiser, params, opt_leaves),
                batch_size=m["batch_size"],
                fitness=_fitness_from_json(m["fitness"]),
                generation=m["generation"],
                lineage=tuple(m["lineage"]),
                info=m["info"],
            )
        )
    key = None if document["key"] is None else jax.random.wrap_key_data(jnp.asarray(document["key"], jnp.uint32))
    return Population(tuple(candidates), generation=document["generation"]), key, document["extra"]


def checkpoint_dir(run_dir: str | os.PathLike, generation: int) -> Path:
    """Where a run keeps the checkpoint of ``generation``."""
    return Path(run_dir) / CHECKPOINTS / f"gen_{generation:06d}"


def write_run_checkpoint(
    run_dir: str | os.PathLike,
    population: Population,
    *,
    key: jax.Array | None = None,
    extra: Mapping[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Saves the population of a run as its newest checkpoint, then points ``LATEST`` at it and prunes old ones.

    ``LATEST`` is replaced atomically (write, fsync, rename) after the checkpoint is complete, so a crash at any
    moment leaves the previous checkpoint usable. The newest ``keep`` checkpoints are kept.
    """
    if keep < 1:
        raise ValueError(f"write_run_checkpoint: keep must be >= 1, got {keep!r}")
    path = save_population(checkpoint_dir(run_dir, population.generation), population, key=key, extra=extra)
    root = path.parent
    # half-written directories of a run killed while writing; cleared before LATEST moves, so that a run whose
    # LATEST names its last generation has none left
    for stale in [*root.glob(".gen_*.tmp-*"), *root.glob(".gen_*.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    for stale in root.glob(f".{LATEST}.*.tmp"):  # a LATEST being written when its process was killed
        stale.unlink(missing_ok=True)
    write_text_atomic(root / LATEST, path.name, sync=True)
    for old in sorted(p for p in root.glob("gen_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def run_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's checkpoint directories, newest first (the one ``LATEST`` names first of all)."""
    root = Path(run_dir) / CHECKPOINTS
    found = sorted((p for p in root.glob("gen_*") if p.is_dir()), reverse=True)
    latest = root / LATEST
    if latest.is_file():
        named = root / latest.read_text().strip()
        if named in found:
            found.remove(named)
            found.insert(0, named)
    return found


def load_run_checkpoint(run_dir: str | os.PathLike) -> tuple[Population, jax.Array | None, dict[str, Any], Path]:
    """The newest usable checkpoint of a run: ``(population, key, extra, path)``.

    A damaged newest checkpoint is reported (``logging`` warning) and the previous one is used.
    """
    import logging

    errors = []
    for path in run_checkpoints(run_dir):
        try:
            return (*load_checkpoint(path), path)
        except CheckpointError as e:
            logging.getLogger("naivega_jax").warning("skipping damaged checkpoint: %s", e)
            errors.append(str(e))
    detail = f": {'; '.join(errors)}" if errors else ""
    raise CheckpointError(f"run directory {str(run_dir)!r} has no usable checkpoint{detail}")


def load_population(path: str | os.PathLike) -> Population:
    """Loads a population from a checkpoint directory, or a run's ``out_dir`` (its newest usable checkpoint).

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> path = ng.save_population(tempfile.mkdtemp() + "/p", ng.Population([ng.Candidate(g)], generation=3))
        >>> ng.load_population(path).generation
        3
    """
    path = Path(path)
    if (path / CHECKPOINTS).is_dir():
        return load_run_checkpoint(path)[0]
    return load_checkpoint(path)[0]
