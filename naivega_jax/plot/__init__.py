"""Callbacks that draw a run with matplotlib."""

__all__: list[str] = []
