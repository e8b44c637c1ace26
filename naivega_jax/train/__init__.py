"""Optimiser specs (optax underneath) and the compile-aware training engine."""

__all__: list[str] = []
