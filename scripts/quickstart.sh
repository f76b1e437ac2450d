#!/usr/bin/env bash
# One command from a fresh clone to verified rollouts: install Gym (the core and the embedded
# local model, `setup.sh local`: no test tools, no other environment's packages), start the
# servers of the guide's weather environment, collect 5 tasks x 2 rollouts, print the reward
# summary and where the rollouts are, and stop the servers. With no policy_base_url in env.yaml
# the policy is the embedded local model (no key, no network); with one, it is that endpoint.
# Extra arguments go to ng_collect_rollouts (e.g. +limit=8 +num_repeats=4).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh local
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CONFIGS="resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml,responses_api_models/openai_model/configs/openai_model.yaml"
OUT=results/my_first_rollouts.jsonl
mkdir -p logs
LOG=logs/quickstart_servers.log

.venv/bin/ng_run "+config_paths=[${CONFIGS}]" "+head_server.port=${PORT}" > "$LOG" 2>&1 &
RUN_PID=$!
stop_servers() {
  if kill -0 "$RUN_PID" 2>/dev/null; then
    kill -INT "$RUN_PID"
    wait "$RUN_PID" || true
  fi
}
trap stop_servers EXIT

echo "Starting the servers (log: $LOG)..."
for _ in $(seq 1 1200); do
  if grep -q "servers healthy in" "$LOG"; then break; fi
  if ! kill -0 "$RUN_PID" 2>/dev/null; then
    echo "ng_run stopped before the servers were up:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q "servers healthy in" "$LOG" || { echo "servers did not start in 120 s" >&2; exit 1; }
grep -E "^(no policy_base_url configured|All [0-9]+ servers healthy)" "$LOG" || true

rm -f "$OUT" "$OUT.manifest.json"
.venv/bin/ng_collect_rollouts +agent_name=example_single_tool_call_simple_agent \
  +input_jsonl_fpath=resources_servers/example_single_tool_call/data/example.jsonl \
  "+output_jsonl_fpath=${OUT}" +limit=5 +num_repeats=2 "+head_server.port=${PORT}" "$@"
echo "Rollouts: ${OUT} (look at one: head -1 ${OUT} | python -m json.tool)"
echo "Browse them: .venv/bin/ng_viewer +jsonl_fpath=${OUT}   (then open http://127.0.0.1:7860)"
