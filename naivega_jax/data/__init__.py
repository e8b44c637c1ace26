"""Data iterators, augmentation and data sets."""

__all__: list[str] = []
