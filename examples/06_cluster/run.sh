#!/usr/bin/env bash
# Starts two cluster runners and the client of examples/06_cluster.ts on this
# machine; then SIGKILLs the runner hosting the `apples` tally and runs the
# client again (`--again`): the tallies continue from the counts stored in
# PostgreSQL. Finally stops the runners. Needs PostgreSQL (CORPS_DATABASE_URL,
# default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/../.."

export CORPS_DATABASE_URL="${CORPS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
# Every runner and client of one cluster shares this secret (16+ characters).
export CORPS_CLUSTER_SECRET="${CORPS_CLUSTER_SECRET:-example-06-secret-change-me}"
# One table prefix per cluster: the example's tables do not mix with others.
export CORPS_CLUSTER_PREFIX="${CORPS_CLUSTER_PREFIX:-corps_example06}"

# The pinned Node 24 itself (not `npx node`), so that $! is the runner's own pid.
node="$(pwd)/node_modules/.bin/node"
logs="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  # Node 24 can hang in process.exit: make sure nothing is left behind.
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

for port in 34601 34602; do
  "$node" src/cli/main.ts runner --module examples/06_cluster.ts --address "127.0.0.1:$port" >"$logs/$port.log" 2>&1 &
  pids+=("$!")
done
for port in 34601 34602; do
  for _ in $(seq 1 100); do
    grep -q "corps-runner ready" "$logs/$port.log" && break
    sleep 0.2
  done
  grep -q "corps-runner ready" "$logs/$port.log" || { cat "$logs/$port.log"; exit 1; }
done
# Give the shards a moment to spread over both runners.
sleep 3
timeout 60 "$node" examples/06_cluster.ts | tee "$logs/client.log"

# Lose a runner without warning: the one hosting the `apples` tally.
victim="$(sed -n 's/^tally apples: .*(runner \([0-9]*\).*/\1/p' "$logs/client.log")"
if [[ " ${pids[*]} " != *" $victim "* ]]; then
  echo "the apples tally was not served by one of our runners (${victim:-none})" >&2
  exit 1
fi
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true # reaps it quietly (no "Killed" notice)
survivors=()
for pid in "${pids[@]}"; do [[ "$pid" == "$victim" ]] || survivors+=("$pid"); done
pids=("${survivors[@]}")
echo "-- SIGKILL runner $victim (it hosts tally apples); the tallies go on:"
# Persisted calls wait for the killed runner's shards to find a new home (~5 s).
timeout 60 "$node" examples/06_cluster.ts --again
