#!/usr/bin/env bash
# weir's test command: installs what the tests need on a fresh Debian machine, then runs
# the whole suite. The README gives this command; .ci/run calls exactly this.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -p weir-features   # extra arguments go to `cargo test`
#
# What it installs, and where:
#   - redis-server, from Debian's packages, if missing (the tests start their own on a free
#     port; a Redis already running on 6379 is never used);
#   - prometheus, from Debian's packages, if missing (one test scrapes weir with it);
#   - the Tansu Kafka broker, with `cargo install`, into $WEIR_CACHE/tansu-$TANSU_VERSION
#     (default ~/.cache/weir), skipped when already there: the cold build takes ~17 min;
#   - noida-db (its Kafka service only: a broker with transactions, for the exactly-once
#     tests), the same way into $WEIR_CACHE/noida-db-$NOIDA_VERSION: ~3 min cold;
#   - confluent-kafka's Python client (the official Schema Registry client, AvroSerializer
#     and AvroDeserializer), pinned in tests/python/requirements.txt, into a virtualenv at
#     $WEIR_CACHE/sr-venv, skipped when already there: tests/tests/schema_registry.rs
#     produces and consumes with it.
# Set WEIR_TEST_BROKERS / WEIR_TEST_REDIS to run against a broker / Redis of your own.
set -euo pipefail
cd "$(dirname "$0")/.."

WEIR_CACHE="${WEIR_CACHE:-${HOME:-/root}/.cache/weir}"
TANSU_VERSION=0.6.0
TANSU_ROOT="$WEIR_CACHE/tansu-$TANSU_VERSION"
NOIDA_VERSION=0.2.3
NOIDA_ROOT="$WEIR_CACHE/noida-db-$NOIDA_VERSION"
export WEIR_CACHE

log() { printf '[test.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing $* from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Toolchain pieces the bundled librdkafka build needs.
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
command -v perl >/dev/null || missing+=(perl)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
# tests/tests/prometheus_scrape.rs runs a real Prometheus against weir's /metrics.
command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
# The Schema Registry's HTTPS test: certificates from the openssl CLI, TLS by socat.
command -v openssl >/dev/null || missing+=(openssl)
command -v socat >/dev/null || missing+=(socat)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

if [ -x "$TANSU_ROOT/bin/tansu" ]; then
  log "tansu $TANSU_VERSION already installed in $TANSU_ROOT"
else
  log "installing tansu $TANSU_VERSION into $TANSU_ROOT (cold build: ~17 minutes)"
  mkdir -p "$WEIR_CACHE"
  cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,postgres \
    --root "$TANSU_ROOT.partial"
  rm -rf "$TANSU_ROOT" && mv "$TANSU_ROOT.partial" "$TANSU_ROOT"
fi
export WEIR_TANSU_BIN="$TANSU_ROOT/bin/tansu"

# A broker with Kafka transactions, for the exactly-once tests (tests/tests/exactly_once.rs):
# Tansu 0.6.0 has no EndTxn, and librdkafka's mock cluster answers transactional requests
# without their meaning (see Services::start_transactional in tests/src/lib.rs).
if [ -x "$NOIDA_ROOT/bin/noida-db" ]; then
  log "noida-db $NOIDA_VERSION already installed in $NOIDA_ROOT"
else
  log "installing noida-db $NOIDA_VERSION (kafka only) into $NOIDA_ROOT (cold build: ~3 minutes)"
  cargo install noida-db --locked --version "$NOIDA_VERSION" --no-default-features --features kafka \
    --root "$NOIDA_ROOT.partial"
  rm -rf "$NOIDA_ROOT" && mv "$NOIDA_ROOT.partial" "$NOIDA_ROOT"
fi
export WEIR_NOIDA_BIN="$NOIDA_ROOT/bin/noida-db"
log "tansu: $("$WEIR_TANSU_BIN" --version 2>/dev/null || echo unknown); redis: $(redis-server --version | cut -d' ' -f3)"

# The other side of the Schema Registry tests: confluent-kafka's official Python client.
SR_VENV="$WEIR_CACHE/sr-venv"
SR_REQUIREMENTS=tests/python/requirements.txt
if [ -f "$SR_VENV/.installed" ] && cmp -s "$SR_VENV/.installed" "$SR_REQUIREMENTS"; then
  log "confluent-kafka already installed in $SR_VENV"
else
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -m venv "$SR_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$SR_VENV"; }
  log "installing $SR_REQUIREMENTS into $SR_VENV"
  "$SR_VENV/bin/pip" install -q -r "$SR_REQUIREMENTS"
  cp "$SR_REQUIREMENTS" "$SR_VENV/.installed"
fi
export WEIR_SR_PYTHON="$SR_VENV/bin/python"

start=$(date +%s)
# The fault tests run the real binary (and SIGKILL it): build it first.
cargo build --locked --bin weir
export WEIR_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/weir"
cargo test --workspace --locked "$@"
log "test suite took $(( $(date +%s) - start )) s"
