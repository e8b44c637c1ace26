"""The application: default search spaces and strategies, and fit()."""

__all__: list[str] = []
