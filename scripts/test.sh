#!/usr/bin/env bash
# Install (if needed) and run the whole test suite: unit tests and end-to-end tests that start
# the real servers on loopback ports. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
