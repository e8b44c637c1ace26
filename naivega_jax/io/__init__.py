"""Persistence of populations and runs: atomic checkpoints (orbax + JSON), resume, lineage."""

from ._checkpoint import (
    CheckpointError,
    checkpoint_dir,
    load_checkpoint,
    load_population,
    load_run_checkpoint,
    run_checkpoints,
    save_population,
    write_run_checkpoint,
)
from ._persist import Persist, lineage_document, save_lineage

__all__ = [
    "CheckpointError",
    "Persist",
    "checkpoint_dir",
    "lineage_document",
    "load_checkpoint",
    "load_population",
    "load_run_checkpoint",
    "run_checkpoints",
    "save_lineage",
    "save_population",
    "write_run_checkpoint",
]
