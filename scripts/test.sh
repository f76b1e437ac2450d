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
# Where unprivileged user namespaces are enabled (Linux, not switched off by sysctl), code_gen's
# sandbox must get its strongest isolation plan: tests/unit/test_sandbox_strength.py fails if it
# falls back. Set GYM_REQUIRE_STRONG_SANDBOX=0 to allow the fallback (e.g. a container that
# forbids namespaces).
userns_enabled() {
    [ "$(uname -s)" = Linux ] || return 1
    [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" -gt 0 ] || return 1
    [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" = 1 ] || return 1
    [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null || echo 0)" = 0 ]
}
if [ -z "${GYM_REQUIRE_STRONG_SANDBOX:-}" ] && userns_enabled; then
    export GYM_REQUIRE_STRONG_SANDBOX=1
fi
exec .venv/bin/python -m pytest "$@"
