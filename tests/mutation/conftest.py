import jax
import pytest
from mutation_helpers import MockUniform

from naivega_jax.mutation import _draw


@pytest.fixture
def mock_uniform(monkeypatch):
    def install(values):
        monkeypatch.setattr(_draw, "uniform", MockUniform(values))

    return install


@pytest.fixture
def keys():
    return jax.random.split(jax.random.key(42), 8)
