import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The models here are tiny: one thread is faster than several and immune to CPU contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
