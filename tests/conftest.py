import os

import pytest
from hypothesis import HealthCheck, settings

from pocketbnn import kernels

# The `isa` fixture holds for the whole test, so hypothesis may share it across examples.
_shared_fixture_ok = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=_shared_fixture_ok)
settings.register_profile("dev", deadline=None, max_examples=200,
                          suppress_health_check=_shared_fixture_ok)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=kernels.available_isas())
def isa(request):
    """Runs the test once per ISA this CPU supports, with every kernel forced to it."""
    with kernels.use_isa(request.param):
        yield request.param
