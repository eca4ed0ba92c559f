import pytest

from engine_oracle import NumpyBackend
from pocketbnn import _core
from pocketbnn.engine.ops import _backend


@pytest.fixture(autouse=True)
def _binary_backend(monkeypatch):
    """In a build without the compiled bconv2d/bmaxpool kernels, run binary ops on the numpy oracle."""
    if not hasattr(_core, "bconv2d"):
        for name in ("prepare_bconv2d", "bconv2d", "bmaxpool2d"):
            monkeypatch.setattr(_backend, name, getattr(NumpyBackend, name))
