#!/usr/bin/env bash
# Latency of `weir run` at a steady rate on Tansu + redis-server (issue 23's aims):
# starts both on free ports, `weir run` with /metrics, then `weir produce --rate RATE`
# for EVENTS events, and reports end-to-end latency (CreateTime to CreateTime, matched by
# event id) and weir's own share (its receipt -> acknowledged summary).
#
#   WEIR=target/release/weir PYTHON=python3 bash tools/bench/steady_latency.sh [RATE] [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE="${1:-10000}"
EVENTS="${2:-300000}"
WEIR="${WEIR:-target/release/weir}"
PYTHON="${PYTHON:-python3}"
TANSU="${WEIR_TANSU_BIN:-${WEIR_CACHE:-$HOME/.cache/weir}/tansu-0.6.0/bin/tansu}"
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
kport=$(free_port); rport=$(free_port); mport=$(free_port)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine memory://tansu/ > "$dir/tansu.log" 2>&1 &
pids=($!)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no > /dev/null 2>&1 &
pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
sleep 1
suffix=$RANDOM$RANDOM
cat > "$dir/weir.toml" <<EOF
[kafka]
brokers = "127.0.0.1:$kport"
group_id = "latency-$suffix"
[kafka.topics]
input = "tx-$suffix"
labels = "labels-$suffix"
scores = "scores-$suffix"
dead_letter = "dlq-$suffix"
[redis]
url = "redis://127.0.0.1:$rport"
[metrics]
listen = "127.0.0.1:$mport"
[monitor]
enabled = false
EOF
for t in "tx-$suffix" "labels-$suffix" "scores-$suffix" "dlq-$suffix"; do
  "$TANSU" topic create --broker "tcp://127.0.0.1:$kport" --partitions 4 "$t" > /dev/null
done
WEIR_LOG=warn "$WEIR" run --config "$dir/weir.toml" > "$dir/weir.log" 2>&1 &
pids+=($!)
sleep 3
"$WEIR" produce --config "$dir/weir.toml" --transactions "$EVENTS" --rate "$RATE" --start-ms $(( $(date +%s) * 1000 - 3600000 )) > /dev/null 2>&1
sleep 3
"$PYTHON" tools/bench/steady_latency.py "127.0.0.1:$kport" "tx-$suffix" "scores-$suffix" "http://127.0.0.1:$mport/metrics"
