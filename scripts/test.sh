#!/usr/bin/env bash
# Install (if needed), lint and type-check, then run the whole test suite: unit tests and
# end-to-end tests that start the real servers on loopback ports. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check --quiet .
.venv/bin/mypy --no-error-summary
exec .venv/bin/python -m pytest "$@"
