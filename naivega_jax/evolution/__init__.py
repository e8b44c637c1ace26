"""Candidates, fitness functions, selection strategies, the population and evolve."""

from ._candidate import Candidate

__all__ = ["Candidate"]
