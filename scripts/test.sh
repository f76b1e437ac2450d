#!/usr/bin/env bash
# Install (if needed), lint and type-check, then run the whole test suite: unit tests and
# end-to-end tests that start the real servers on loopback ports. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# dev (local model, environments, test tools) and train (torch, transformers, TRL: the training
# tests, the closed loop and TRL's GRPOTrainer run for real on the CPU) and ray (the scale-out tests
# start real local Ray clusters).
bash scripts/setup.sh dev train ray
.venv/bin/ruff check --quiet .
.venv/bin/mypy --no-error-summary
exec .venv/bin/python -m pytest "$@"
