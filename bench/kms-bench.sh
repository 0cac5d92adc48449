#!/usr/bin/env bash
# vmcrypt-kms against PyKMIP's server with the same load generator (bench/kms-load)
# in the same run: Get, durable Create, Encrypt and a mix on vmcrypt-kms, then the
# mix on PyKMIP (a short run: it is slow), and the ratio.
# Usage: bench/kms-bench.sh [BUILD_DIR]   (default build-kms; configured if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-kms}
SECONDS_RUN=${SECONDS_RUN:-5}
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

echo "== vmcrypt-kms ($(nproc) cores, load generator on the same machine), ${SECONDS_RUN}s each"
run() { # label, args...
  local label=$1; shift
  local out
  out=$("${LOAD[@]}" "$@")
  printf '%-28s %s\n' "$label" "$out"
  LAST=$(sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' <<<"$out")
}
run "Get, 16 conns"              --port "$PORT" --conns 16 --seconds "$SECONDS_RUN" --mix get
run "Create (durable), 32 conns" --port "$PORT" --conns 32 --seconds "$SECONDS_RUN" --mix create
run "Encrypt, 16 conns"          --port "$PORT" --conns 16 --seconds "$SECONDS_RUN" --mix encrypt
declare -A OURS THEIRS
for n in 1 4 16; do
  run "Mix 8:1:1, $n conns, KMIP 1.2" --port "$PORT" --conns "$n" --seconds "$SECONDS_RUN" --kmip 1.2
  OURS[$n]=$LAST
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
echo "== PyKMIP 0.10 server (same certificates, SQLite), 3s each"
for n in 1 4 16; do
  run "Mix 8:1:1, $n conns, KMIP 1.2" --port "$PPORT" --conns "$n" --seconds 3 --kmip 1.2
  THEIRS[$n]=$LAST
done
kill "$PYK_PID" 2>/dev/null || true; PYK_PID=
echo "== ratio vmcrypt-kms / PyKMIP, same mix and connection count"
best_o=0; best_t=0
for n in 1 4 16; do
  t=${THEIRS[$n]}; o=${OURS[$n]}
  echo "   $n conns: $o / $t ops/s = $(( o / (t > 0 ? t : 1) ))x"
  [ "$o" -gt "$best_o" ] && best_o=$o
  [ "$t" -gt "$best_t" ] && best_t=$t
done
echo "   best of each: $best_o / $best_t ops/s = $(( best_o / (best_t > 0 ? best_t : 1) ))x"
