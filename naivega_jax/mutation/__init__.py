"""Mutations and crossover of graphs, optimisers and batch sizes, and their composable wrappers."""

__all__: list[str] = []
