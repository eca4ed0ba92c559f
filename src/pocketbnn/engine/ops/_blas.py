"""The float GEMM's BLAS: OpenBLAS from the ``scipy-openblas32`` wheel (the build numpy and
scipy ship), loaded once and handed to the compiled core as ``cblas_sgemm`` and ``cblas_sgemv``
addresses (sgemv for products of up to 3 rows, e.g. a dense layer at batch 1).

The core calls it from its own thread pool, one row band per call, so OpenBLAS is pinned to
one thread of its own: the engine's ``num_threads`` alone decides how many cores a run uses.
Loading a shared library by path runs no Python code from the model; it happens on the first
use of the engine's float ops, not at ``import pocketbnn``.
"""

from __future__ import annotations

import ctypes
import functools
import os

from pocketbnn import _core


@functools.cache
def register() -> ctypes.CDLL:
    """Load OpenBLAS and register its ``cblas_sgemm`` and ``cblas_sgemv`` with the core; returns
    the library, kept alive by the cache for as long as the core may call it.

    Raises:
        ImportError: the ``scipy-openblas32`` package is missing or its library lacks them.
    """
    try:
        import scipy_openblas32
    except ImportError as e:
        raise ImportError("the engine's float GEMM needs the scipy-openblas32 package "
                          "(pip install scipy-openblas32)") from e
    path = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True))
    lib = ctypes.CDLL(path)
    try:
        set_threads, sgemm, sgemv = lib.scipy_openblas_set_num_threads, lib.scipy_cblas_sgemm, lib.scipy_cblas_sgemv
    except AttributeError as e:
        raise ImportError(f"{path} does not export scipy_cblas_sgemm / scipy_cblas_sgemv / "
                          "scipy_openblas_set_num_threads") from e
    set_threads.argtypes = [ctypes.c_int]
    set_threads(1)
    _core.set_blas(ctypes.cast(sgemm, ctypes.c_void_p).value, ctypes.cast(sgemv, ctypes.c_void_p).value)
    return lib
