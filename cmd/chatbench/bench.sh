#!/usr/bin/env bash
# bench.sh — run chatbench scenarios against the server built from this tree,
# the server pinned to CPU 0 and the generator to CPU 1 (issue 7's method).
#
#   cmd/chatbench/bench.sh                      # every scenario (~5 minutes on an idle machine)
#   cmd/chatbench/bench.sh fanout-2000x50 join-2000   (or CHATBENCH_SCENARIOS="fanout-2000x50 join-2000")
#   CHATBENCH_PROFILE=1 cmd/chatbench/bench.sh  # also CPU and heap profiles of the server
#
# Each scenario gets a fresh server and data directory (so memory and CPU are
# its own). Reports go to dist/bench/NAME.json, profiles to dist/profiles/,
# server logs to dist/bench/NAME.server.log; a Markdown table of the run is
# printed at the end (dist/bench/summary.md). Exits non-zero if a scenario
# lost or duplicated messages, failed, or was invalid (generator-limited or a
# busy machine); missed targets are reported, not failures.
#
# Environment: CHATBENCH_PROFILE=1 for profiles; CHATBENCH_REPEAT=N runs each
# scenario N times (reports NAME.1.json…); CHATBENCH_TRANSPORT=ws to
# load the WebSocket endpoint instead of TCP, =tls for TLS over TCP (with a
# fresh self-signed certificate); CHATBENCH_SERVER_ARGS for extra
# server flags (e.g. "-sync normal"); CHATBENCH_ARGS for extra chatbench flags
# (e.g. "-duration 10s"); CHATBENCH_SERVER_CPU / CHATBENCH_GEN_CPU (0 / 1);
# CHATBENCH_PORT_BASE (17000: TCP on +878, HTTP on +80, pprof on +60);
# CHATBENCH_QUIET_WAIT: seconds to wait for an idle machine before each run (180);
# CHATBENCH_TAG names a variant: reports go to NAME.TAG.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCENARIOS=(join-2000 fanout-2000x50 fanout-5000x100 ingest-10k idle-19000)
if [ $# -gt 0 ]; then
  SCENARIOS=("$@")
elif [ -n "${CHATBENCH_SCENARIOS:-}" ]; then
  read -r -a SCENARIOS <<<"$CHATBENCH_SCENARIOS"
fi

OUT=dist/bench
PROFILES=dist/profiles
BIN=$OUT/bin
SERVER_CPU=${CHATBENCH_SERVER_CPU:-0}
GEN_CPU=${CHATBENCH_GEN_CPU:-1}
BASE=${CHATBENCH_PORT_BASE:-17000}
TCP=127.0.0.1:$((BASE + 878))
HTTP=127.0.0.1:$((BASE + 80))
PPROF=127.0.0.1:$((BASE + 60))

say() { printf '==> %s\n' "$*" >&2; }

TRANSPORT=${CHATBENCH_TRANSPORT:-tcp}
case $TRANSPORT in
tcp | ws | tls) ;;
*)
  say "CHATBENCH_TRANSPORT=$TRANSPORT: use tcp, ws or tls"
  exit 2
  ;;
esac

mkdir -p "$OUT" "$PROFILES" "$BIN"
# What is measured: the commit, and a fingerprint of the server's and the
# protocol's non-test sources (the tree may hold uncommitted changes).
src=$(find server protocol -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-8)
LABEL="$(git describe --always --dirty 2>/dev/null || echo unknown) src:$src"
say "building the server and chatbench ($LABEL)"
go build -o "$BIN/chat-server" ./server
go build -o "$BIN/chatbench" ./cmd/chatbench

# The generator needs a socket per connection: up to the hard limit (20,000 here).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 20000 ]; then
  say "WARNING: open files limited to $(ulimit -n): idle-19000 needs 20000"
fi

# Command prefixes that pin (taskset execs the command, so $! is the server's pid).
PIN_SERVER=()
PIN_GEN=()
if command -v taskset >/dev/null && [ "$(nproc --all)" -gt "$SERVER_CPU" ] && [ "$(nproc --all)" -gt "$GEN_CPU" ]; then
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_GEN=(taskset -c "$GEN_CPU")
else
  say "WARNING: no taskset or not enough CPUs: server and generator are NOT pinned"
fi

# With TLS both listeners use a self-signed certificate for 127.0.0.1.
TLS_ARGS=()
HEALTH=http://$HTTP/healthz
if [ "$TRANSPORT" = tls ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$OUT/tls.key" -out "$OUT/tls.crt" 2>/dev/null
  TLS_ARGS=(-tls-cert "$OUT/tls.crt" -tls-key "$OUT/tls.key")
  HEALTH=https://$HTTP/healthz
fi
health() { curl -kfsS "$HEALTH" >/dev/null 2>&1; }

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

start_server() { # start_server NAME
  local name=$1 data="$OUT/data-$1"
  if health || curl -fsS "http://$HTTP/healthz" >/dev/null 2>&1; then
    say "something already serves $HTTP: stop it, or set CHATBENCH_PORT_BASE"
    return 1
  fi
  rm -rf "$data"
  # -msg-rate 0: the per-connection message rate limit (5/s by default) is a
  # policy for people, not for a benchmark's senders. -sync full is the default,
  # given explicitly: an acknowledged message is on disk.
  # shellcheck disable=SC2086 # CHATBENCH_SERVER_ARGS is a list of flags
  "${PIN_SERVER[@]}" "$BIN/chat-server" -tcp "$TCP" -http "$HTTP" -pprof "$PPROF" -data "$data" \
    -log-level warn -msg-rate 0 -sync full "${TLS_ARGS[@]}" ${CHATBENCH_SERVER_ARGS:-} >"$OUT/$name.server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    if health; then
      return 0
    fi
    sleep 0.1
  done
  cat "$OUT/$name.server.log" >&2
  say "the server did not start"
  return 1
}

case $TRANSPORT in
tcp) addr=$TCP ;;
tls) addr="tls://$TCP" ;;
ws) addr="ws://$HTTP/ws" ;;
esac

# busy_cores prints how many cores the machine kept busy over one second.
busy_cores() {
  local a b
  read -r _ u1 n1 s1 _ _ i1 q1 _ </proc/stat
  sleep 1
  read -r _ u2 n2 s2 _ _ i2 q2 _ </proc/stat
  a=$((u1 + n1 + s1 + i1 + q1))
  b=$((u2 + n2 + s2 + i2 + q2))
  echo $(((b - a) * 100 / $(getconf CLK_TCK)))
}

# wait_quiet waits up to CHATBENCH_QUIET_WAIT seconds (180) for the machine
# to be nearly idle: other work on the two CPUs distorts every number (and
# chatbench marks such runs invalid).
wait_quiet() {
  local waited=0 limit=${CHATBENCH_QUIET_WAIT:-180} busy
  while busy=$(busy_cores) && [ "$busy" -gt 10 ]; do
    if [ "$waited" -ge "$limit" ]; then
      say "WARNING: the machine is still busy (${busy}% of a core used by others); running anyway"
      return 0
    fi
    [ "$waited" -eq 0 ] && say "waiting for the machine to be quiet (${busy}% of a core busy)"
    sleep 4
    waited=$((waited + 5))
  done
}

REPEAT=${CHATBENCH_REPEAT:-1}
failed=()
reports=()
for name in "${SCENARIOS[@]}"; do
  for i in $(seq "$REPEAT"); do
    run=$name
    [ -n "${CHATBENCH_TAG:-}" ] && run=$run.$CHATBENCH_TAG
    [ "$REPEAT" -gt 1 ] && run=$run.$i
    wait_quiet
    say "scenario $run"
    rm -f "$OUT/$run.json"
    start_server "$run"
    # -pprof always: chatbench asks it for the goroutine count and memory
    # statistics after the window (two requests, outside the measurement).
    profile_args=(-pprof "http://$PPROF")
    if [ "${CHATBENCH_PROFILE:-}" = 1 ]; then
      profile_args+=(-cpuprofile "$PROFILES/$run.cpu.pprof" -heapprofile "$PROFILES/$run.heap.pprof")
    fi
    status=0
    # shellcheck disable=SC2086 # CHATBENCH_ARGS is a list of flags
    "${PIN_GEN[@]}" "$BIN/chatbench" -addr "$addr" -scenario "$name" -server-pid "$server_pid" \
      -label "$LABEL" -json-file "$OUT/$run.json" "${profile_args[@]}" ${CHATBENCH_ARGS:-} || status=$?
    stop_server
    if [ -f "$OUT/$run.json" ]; then
      reports+=("$OUT/$run.json")
    fi
    if [ "$status" -ne 0 ]; then
      failed+=("$run (exit $status)")
    fi
    sleep 1 # let the closed sockets settle before the next run
  done
done

if [ ${#reports[@]} -gt 0 ]; then
  "$BIN/chatbench" -summarize "${reports[@]}" | tee "$OUT/summary.md"
fi
if [ ${#failed[@]} -gt 0 ]; then
  say "not clean or not valid: ${failed[*]}"
  exit 1
fi
