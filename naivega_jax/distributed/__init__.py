"""Executors for fitness evaluation: in-process, several devices, Ray."""

__all__: list[str] = []
