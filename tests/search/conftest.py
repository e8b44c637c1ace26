import pytest


class SeqRng:
    """NaiveGAflux's test SeqRng: each draw from n values picks the next index, ind = ind % n + 1 (1-based)."""

    def __init__(self, ind: int = 0):
        self.ind = ind

    def integers(self, n):
        self.ind = self.ind % n + 1
        return self.ind - 1


@pytest.fixture
def seq_rng():
    return SeqRng
