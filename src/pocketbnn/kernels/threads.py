"""How many threads the binary kernels use.

Every kernel call takes ``num_threads=None``, meaning the process-wide setting below (default
1, so that a kernel never competes with torch or other threads unless asked). The core runs
the work on a std::thread pool, the calling thread included, with the GIL released.
"""

from __future__ import annotations

_num_threads = 1


def set_num_threads(n: int) -> None:
    """Default thread count of every kernel call that does not pass ``num_threads``."""
    global _num_threads
    _num_threads = _checked(n)


def get_num_threads() -> int:
    """The default set by :func:`set_num_threads` (1 unless changed)."""
    return _num_threads


def resolve_num_threads(num_threads: int | None) -> int:
    """``num_threads`` if given (checked), else the default."""
    return _num_threads if num_threads is None else _checked(num_threads)


def _checked(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"num_threads must be a positive int, got {n!r}")
    return n
