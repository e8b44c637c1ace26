"""Candidates, fitness functions, selection strategies, the population and evolve."""

__all__: list[str] = []
