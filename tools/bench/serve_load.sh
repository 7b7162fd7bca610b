#!/usr/bin/env bash
# Load test of `weir serve` with wrk (Debian's `wrk`): a Redis of its own on a free port,
# the card windows filled by `weir run` over 20 000 generated events on a Tansu broker of
# its own, then wrk against POST /score. Prints wrk's summary line
# (requests/s, p50, p99, p99.9).
#   bash tools/bench/serve_load.sh [target/debug/weir] [duration, default 20s] [connections, default 32]
set -euo pipefail
WEIR=${1:-target/debug/weir}; DURATION=${2:-20s}; CONNS=${3:-32}
TANSU=${WEIR_TANSU_BIN:-${WEIR_CACHE:-$HOME/.cache/weir}/tansu-0.6.0/bin/tansu}
dir=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(port); KP=$(port); HP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null & pids+=($!)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KP" --advertised-listener-url "tcp://127.0.0.1:$KP" \
  --storage-engine memory://tansu/ >"$dir/tansu.log" 2>&1 & pids+=($!)
sleep 2
cat >"$dir/weir.toml" <<TOML
[kafka]
brokers = "127.0.0.1:$KP"
group_id = "serve-load"
[redis]
url = "redis://127.0.0.1:$RP"
TOML
for t in transactions labels scores transactions.dlq scores.shadow; do
  "$TANSU" topic create --broker "tcp://127.0.0.1:$KP" --partitions 2 "$t" >/dev/null 2>&1 || true
done
"$WEIR" produce --config "$dir/weir.toml" --transactions 20000 --start-ms $(( $(date +%s) * 1000 - 3600000 )) >/dev/null
WEIR_LOG=warn "$WEIR" run --config "$dir/weir.toml" & runpid=$!; pids+=($runpid)
sleep 15; kill -INT "$runpid"; wait "$runpid" || true
cards=$(redis-cli -p "$RP" --scan | wc -l)
echo "redis holds $cards keys after weir run" >&2
WEIR_LOG=warn "$WEIR" serve --config "$dir/weir.toml" --listen "127.0.0.1:$HP" & pids+=($!)
sleep 1
curl -s -X POST "http://127.0.0.1:$HP/score" -H 'content-type: application/json' \
  -d '{"event_id":"probe","card_id":"card-00001","merchant_id":"m","device_id":"d","amount":42.0,"currency":"EUR","country":"FR","channel":"pos","customer_segment":"retail","event_time":1767225600000}' >&2
echo >&2
wrk -t2 -c"$CONNS" -d"$DURATION" -s tools/bench/serve_wrk.lua "http://127.0.0.1:$HP"
