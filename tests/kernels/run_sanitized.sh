#!/bin/sh
# Runs the kernel tests against an AddressSanitizer + UndefinedBehaviorSanitizer build of the
# core, built into $BUILD (not installed, so the normal editable install stays usable).
# Usage: tests/kernels/run_sanitized.sh [pytest args]     (from the repository root)
set -e
BUILD=${BUILD:-/tmp/pocketbnn-sanitized}
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" -m pip install --no-build-isolation --no-deps --quiet --upgrade --target "$BUILD/site" \
  -Ccmake.define.POCKETBNN_SANITIZE=ON -Cbuild-dir="$BUILD/build" .
# The sanitizer runtimes must be loaded before the interpreter; leaks are CPython's own.
# The editable install's import hook is dropped so that the sanitized copy is imported.
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
exec "$PYTHON" -c "
import sys
sys.meta_path[:] = [f for f in sys.meta_path if 'ScikitBuild' not in type(f).__name__]
sys.path.insert(0, '$BUILD/site')
import pocketbnn._core
assert pocketbnn._core.__file__.startswith('$BUILD'), pocketbnn._core.__file__
import pytest
sys.exit(pytest.main(['-p', 'no:cacheprovider', 'tests/kernels'] + sys.argv[1:]))
" "$@"
