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
#
# Cluster mode: CHATBENCH_CLUSTER=N starts, for each run, a NATS JetStream
# cluster (nats-server built from its Go module, a tool in go.mod; JetStream
# stores in a fresh temporary directory) and N chat servers sharing it
# (-nats URL,URL,URL -node node-I), all pinned to the server's CPU like the
# single server. chatbench then spreads receivers and senders round-robin
# over the N nodes (-addr listing them) and reports each process's cost and
# the sum (-server-pid: the nodes in order, then the NATS servers, whose
# work is the cluster's too). The -pprof profiles and Go memory statistics
# are node 0's. N=1 is one chat node on one NATS server: SQLite against
# JetStream on a single node. Reports get the tag cluster-N (NAME.cluster-N.json,
# before CHATBENCH_TAG's). CHATBENCH_NATS: NATS servers (default 1 for N=1,
# else 3); CHATBENCH_NATS_SYNC: JetStream's sync_interval (e.g. "always"
# for an fsync per write, like -sync full; default NATS's own, 2m). Ports:
# node I on TCP +878+I, HTTP +80+I, pprof +60+I; NATS J on +222+J, its
# routes on +262+J. Logs: dist/bench/NAME.node-I.log and NAME.nats-J.log.
# Without CHATBENCH_CLUSTER nothing of this happens.
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

CLUSTER=${CHATBENCH_CLUSTER:-0}
if ! [[ $CLUSTER =~ ^[0-9]+$ ]] || [ "$CLUSTER" -gt 9 ]; then
  say "CHATBENCH_CLUSTER=$CLUSTER: give the number of chat nodes (1-9), or 0 for the single server"
  exit 2
fi
NATS_N=${CHATBENCH_NATS:-$([ "$CLUSTER" -eq 1 ] && echo 1 || echo 3)}
if [ "$CLUSTER" -gt 0 ] && { ! [[ $NATS_N =~ ^[1-9]$ ]]; }; then
  say "CHATBENCH_NATS=$NATS_N: give the number of NATS servers (1-9)"
  exit 2
fi

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
if [ "$CLUSTER" -gt 0 ]; then
  say "cluster mode: $CLUSTER chat node(s) on $NATS_N NATS server(s); building nats-server"
  go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
fi

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

# Cluster mode: the NATS servers and chat nodes of the current run, their
# pids (nodes first, in order) and the temporary directory of their stores.
cluster_pids=()
cluster_dir=""
stop_cluster() {
  local p
  # One by one, nodes first: a node shutting down still talks to NATS.
  for p in "${cluster_pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  cluster_pids=()
  if [ -n "$cluster_dir" ]; then
    rm -rf "$cluster_dir"
    cluster_dir=""
  fi
}
trap 'stop_server; stop_cluster' EXIT

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

# port_open HOST:PORT: whether something listens there.
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# start_cluster NAME starts NATS_N NATS servers and CLUSTER chat nodes and
# sets addr (the nodes' addresses, comma-separated), server_pids (the
# nodes' pids, then the NATS servers') and pprof_addr (node 0's).
start_cluster() {
  local name=$1 i j urls="" routes="" nats_pids=() node_pids=() addrs=() tcp http
  for ((i = 0; i < CLUSTER; i++)); do
    for p in $((BASE + 878 + i)) $((BASE + 80 + i)) $((BASE + 60 + i)); do
      if port_open "127.0.0.1:$p"; then
        say "something already listens on 127.0.0.1:$p: stop it, or set CHATBENCH_PORT_BASE"
        return 1
      fi
    done
  done
  for ((j = 0; j < NATS_N; j++)); do
    for p in $((BASE + 222 + j)) $((BASE + 262 + j)); do
      if port_open "127.0.0.1:$p"; then
        say "something already listens on 127.0.0.1:$p: stop it, or set CHATBENCH_PORT_BASE"
        return 1
      fi
    done
  done
  cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/chatbench-cluster.XXXXXX")
  for ((j = 0; j < NATS_N; j++)); do
    urls+="nats://127.0.0.1:$((BASE + 222 + j)),"
    routes+="nats-route://127.0.0.1:$((BASE + 262 + j)), "
  done
  urls=${urls%,}
  routes=${routes%, }
  for ((j = 0; j < NATS_N; j++)); do
    {
      echo "server_name: nats-$j"
      echo "listen: 127.0.0.1:$((BASE + 222 + j))"
      echo "jetstream {"
      echo "  store_dir: \"$cluster_dir/nats-$j\""
      [ -n "${CHATBENCH_NATS_SYNC:-}" ] && echo "  sync_interval: ${CHATBENCH_NATS_SYNC}"
      echo "}"
      if [ "$NATS_N" -gt 1 ]; then
        echo "cluster {"
        echo "  name: chatbench"
        echo "  listen: 127.0.0.1:$((BASE + 262 + j))"
        echo "  routes: [ $routes ]"
        echo "}"
      fi
    } >"$cluster_dir/nats-$j.conf"
    "${PIN_SERVER[@]}" "$BIN/nats-server" -c "$cluster_dir/nats-$j.conf" >"$OUT/$name.nats-$j.log" 2>&1 &
    cluster_pids+=($!)
    nats_pids+=($!)
  done
  for ((j = 0; j < NATS_N; j++)); do
    for _ in $(seq 300); do
      port_open "127.0.0.1:$((BASE + 222 + j))" && continue 2
      kill -0 "${nats_pids[$j]}" 2>/dev/null || break
      sleep 0.1
    done
    cat "$OUT/$name.nats-$j.log" >&2
    say "NATS server $j did not start"
    return 1
  done
  for ((i = 0; i < CLUSTER; i++)); do
    tcp=127.0.0.1:$((BASE + 878 + i))
    http=127.0.0.1:$((BASE + 80 + i))
    # The single server's flags (see start_server); -data holds nothing in
    # cluster mode but is given a directory of the run's own all the same.
    # shellcheck disable=SC2086 # CHATBENCH_SERVER_ARGS is a list of flags
    "${PIN_SERVER[@]}" "$BIN/chat-server" -nats "$urls" -node "node-$i" -tcp "$tcp" -http "$http" \
      -pprof "127.0.0.1:$((BASE + 60 + i))" -data "$cluster_dir/chat-$i" -log-level warn -msg-rate 0 -sync full \
      "${TLS_ARGS[@]}" ${CHATBENCH_SERVER_ARGS:-} >"$OUT/$name.node-$i.log" 2>&1 &
    cluster_pids+=($!)
    node_pids+=($!)
    case $TRANSPORT in
    tcp) addrs+=("$tcp") ;;
    tls) addrs+=("tls://$tcp") ;;
    ws) addrs+=("ws://$http/ws") ;;
    esac
  done
  for ((i = 0; i < CLUSTER; i++)); do
    # A NATS cluster elects its JetStream leader in a few seconds: allow 60.
    for _ in $(seq 600); do
      kill -0 "${node_pids[$i]}" 2>/dev/null || break
      if curl -kfsS "$(scheme)://127.0.0.1:$((BASE + 80 + i))/healthz" >/dev/null 2>&1; then
        continue 2
      fi
      sleep 0.1
    done
    cat "$OUT/$name.node-$i.log" >&2
    say "chat node $i did not start"
    return 1
  done
  addr=$(IFS=,; echo "${addrs[*]}")
  server_pids=$(IFS=,; echo "${node_pids[*]},${nats_pids[*]}")
  pprof_addr=127.0.0.1:$((BASE + 60))
}

# scheme of the servers' HTTP listener (HTTPS with TLS).
scheme() { if [ "$TRANSPORT" = tls ]; then echo https; else echo http; fi; }

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
    [ "$CLUSTER" -gt 0 ] && run=$run.cluster-$CLUSTER
    [ -n "${CHATBENCH_TAG:-}" ] && run=$run.$CHATBENCH_TAG
    [ "$REPEAT" -gt 1 ] && run=$run.$i
    wait_quiet
    say "scenario $run"
    rm -f "$OUT/$run.json"
    if [ "$CLUSTER" -gt 0 ]; then
      start_cluster "$run"
    else
      start_server "$run"
      server_pids=$server_pid
      pprof_addr=$PPROF
    fi
    # -pprof always: chatbench asks it for the goroutine count and memory
    # statistics after the window (two requests, outside the measurement).
    profile_args=(-pprof "http://$pprof_addr")
    if [ "${CHATBENCH_PROFILE:-}" = 1 ]; then
      profile_args+=(-cpuprofile "$PROFILES/$run.cpu.pprof" -heapprofile "$PROFILES/$run.heap.pprof")
    fi
    status=0
    # shellcheck disable=SC2086 # CHATBENCH_ARGS is a list of flags
    "${PIN_GEN[@]}" "$BIN/chatbench" -addr "$addr" -scenario "$name" -server-pid "$server_pids" \
      -label "$LABEL" -json-file "$OUT/$run.json" "${profile_args[@]}" ${CHATBENCH_ARGS:-} || status=$?
    stop_server
    stop_cluster
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
