"""Search spaces: parameter spaces, layer spaces, architecture spaces, weight inits, sample_graph."""

__all__: list[str] = []
