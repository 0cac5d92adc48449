#!/usr/bin/env bash
# vmcrypt-kms against PyKMIP's server with the same load generator (bench/kms-load)
# in the same run. Each workload (Get, durable Create, Encrypt, and a mix of 8 Get :
# 1 Create : 1 Encrypt) runs at several connection counts on both servers; the
# ratio is printed per workload at equal connection counts and best against best.
# createget alternates Create and Get on each connection (the issue's anchor).
# Usage: bench/kms-bench.sh [BUILD_DIR]   (default build-kms; configured if needed)
#   SECONDS_RUN=5 (vmcrypt-kms runs), PYKMIP_SECONDS=3 (PyKMIP runs: it is slow)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-kms}
SECONDS_RUN=${SECONDS_RUN:-5}
PYKMIP_SECONDS=${PYKMIP_SECONDS:-3}
[ -f "$B/build.ninja" ] || meson setup "$B" -Dbuildtype=release >/dev/null
ninja -C "$B" src/kms/vmcrypt-kms bench/kms-load >/dev/null

T=$(mktemp -d /tmp/kms-bench-XXXXXX)
KMS_PID= ; PYK_PID=
cleanup() {
  [ -n "$KMS_PID" ] && kill "$KMS_PID" 2>/dev/null || true
  [ -n "$PYK_PID" ] && kill "$PYK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

"$B/src/kms/vmcrypt-kms" init "$T/s" --client bench --listen 127.0.0.1:0 >/dev/null
: > "$T/kms.out"
"$B/src/kms/vmcrypt-kms" serve --config "$T/s/kms.conf" >"$T/kms.out" 2>"$T/kms.err" &
KMS_PID=$!
for _ in $(seq 100); do grep -q '^listening on' "$T/kms.out" && break; sleep 0.05; done
PORT=$(sed -n 's/^listening on //p' "$T/kms.out")
LOAD=("$B/bench/kms-load" --cert "$T/s/client-bench.crt" --key "$T/s/client-bench.key" --ca "$T/s/ca.crt")

# createget: the issue's own anchor (Create and Get alternating on each connection).
WORKLOADS=(get create encrypt mix createget)
OUR_CONNS=(1 4 16 64)
THEIR_CONNS=(1 4 16)
declare -A MIXARG=([get]=get [create]=create [encrypt]=encrypt [mix]=get:8,create:1,encrypt:1 [createget]=create:1,get:1)
declare -A OURS THEIRS
run() { # server-label port seconds workload conns -> sets LAST
  local out
  out=$("${LOAD[@]}" --port "$2" --conns "$5" --seconds "$3" --kmip 1.2 --mix "${MIXARG[$4]}")
  printf '%-14s %-9s %3s conns  %s\n' "$1" "$4" "$5" "$out"
  LAST=$(sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' <<<"$out")
}

echo "== vmcrypt-kms ($(nproc) cores, load generator on the same machine), ${SECONDS_RUN}s each"
for w in "${WORKLOADS[@]}"; do
  for n in "${OUR_CONNS[@]}"; do
    run vmcrypt-kms "$PORT" "$SECONDS_RUN" "$w" "$n"; OURS[$w,$n]=$LAST
  done
done
kill -TERM "$KMS_PID"; wait "$KMS_PID" || true; KMS_PID=

if ! command -v pykmip-server >/dev/null; then
  echo "PyKMIP server not installed (python3-pykmip): no comparison" >&2
  exit 1
fi
mkdir -p "$T/pyk/policies" "$T/pyk/log"
PPORT=$((20000 + RANDOM % 20000))
cat >"$T/pyk/server.conf" <<CONF
[server]
hostname=127.0.0.1
port=$PPORT
certificate_path=$T/s/server.crt
key_path=$T/s/server.key
ca_path=$T/s/ca.crt
auth_suite=TLS1.2
policy_path=$T/pyk/policies
enable_tls_client_auth=True
logging_level=WARNING
database_path=$T/pyk/pykmip.db
CONF
/usr/bin/pykmip-server -f "$T/pyk/server.conf" -l "$T/pyk/log/server.log" >/dev/null 2>&1 &
PYK_PID=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PPORT) 2>/dev/null && break; sleep 0.1
done
echo "== PyKMIP 0.10 server (same certificates, SQLite), ${PYKMIP_SECONDS}s each"
for w in "${WORKLOADS[@]}"; do
  for n in "${THEIR_CONNS[@]}"; do
    run PyKMIP "$PPORT" "$PYKMIP_SECONDS" "$w" "$n"; THEIRS[$w,$n]=$LAST
  done
done
kill "$PYK_PID" 2>/dev/null || true; PYK_PID=

ratio() { awk -v o="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0fx", o / t; else print "n/a" }'; }
echo "== ratio vmcrypt-kms / PyKMIP (ops/s), per workload"
printf '   %-9s' workload
for n in "${THEIR_CONNS[@]}"; do printf ' %18s' "$n conns"; done
printf ' %30s\n' "best of each (conns)"
for w in "${WORKLOADS[@]}"; do
  printf '   %-9s' "$w"
  for n in "${THEIR_CONNS[@]}"; do printf ' %18s' "$(ratio "${OURS[$w,$n]}" "${THEIRS[$w,$n]}")"; done
  bo=0; bon=0; bt=0; btn=0
  for n in "${OUR_CONNS[@]}"; do [ "${OURS[$w,$n]}" -gt "$bo" ] && { bo=${OURS[$w,$n]}; bon=$n; }; done
  for n in "${THEIR_CONNS[@]}"; do [ "${THEIRS[$w,$n]}" -gt "$bt" ] && { bt=${THEIRS[$w,$n]}; btn=$n; }; done
  printf ' %30s\n' "$bo($bon) / $bt($btn) = $(ratio "$bo" "$bt")"
done
echo "   goals: >= 20,000 Get/s, >= 2,000 durable Create/s, >= 100x PyKMIP"
