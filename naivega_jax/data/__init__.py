"""Data iterators, augmentation, validation splits and data sets (``ng.datasets``).

Iterators run on the host over numpy arrays; batches are numpy arrays (or tuples of them) with the batch axis first.
"""

from . import datasets
from ._augment import FlipIterator, ShiftIterator
from ._iterators import (
    BatchIterator,
    MapIterator,
    ReBatchingIterator,
    RepeatPartitionIterator,
    SeedIterator,
    StatefulGenerationIter,
    TimedIterator,
)
from ._split import check_labels, encode_labels, train_val_split

__all__ = [
    "BatchIterator",
    "FlipIterator",
    "MapIterator",
    "ReBatchingIterator",
    "RepeatPartitionIterator",
    "SeedIterator",
    "ShiftIterator",
    "StatefulGenerationIter",
    "TimedIterator",
    "check_labels",
    "datasets",
    "encode_labels",
    "train_val_split",
]
