"""Persistence of populations and runs: checkpoints, resume, lineage."""

__all__: list[str] = []
