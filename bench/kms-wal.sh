#!/usr/bin/env bash
# A long durable-Create run against vmcrypt-kms that prints, every INTERVAL seconds,
# the Creates so far, the rate of the last interval and the sizes of the database
# and its WAL: whether checkpoints keep up over time (the WAL should stay under
# about 32 MiB and the database grow with the objects), and what they cost (the rate
# should not fall as the database grows). Anchor: the first interval's rate.
# Usage: bench/kms-wal.sh [BUILD_DIR]   (default build-kms, a release build)
#   DURATION=1800 (seconds)  INTERVAL=30  CONNS=64
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-kms}
DURATION=${DURATION:-1800}
INTERVAL=${INTERVAL:-30}
CONNS=${CONNS:-64}
[ -f "$B/build.ninja" ] || meson setup "$B" -Dbuildtype=release >/dev/null
ninja -C "$B" src/kms/vmcrypt-kms bench/kms-load >/dev/null

T=$(mktemp -d /tmp/kms-wal-XXXXXX)
KMS_PID=
cleanup() {
  [ -n "$KMS_PID" ] && kill "$KMS_PID" 2>/dev/null || true
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
LOAD=("$B/bench/kms-load" --cert "$T/s/client-bench.crt" --key "$T/s/client-bench.key" --ca "$T/s/ca.crt"
      --port "$PORT" --conns "$CONNS" --kmip 1.2 --mix create)
size() { stat -c %s "$1" 2>/dev/null || echo 0; }

echo "== durable Create, $CONNS connections, ${DURATION}s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %9s %9s %10s %10s\n' elapsed creates rate/s p99_us wal_KiB db_KiB
total=0 elapsed=0 first=
while [ "$elapsed" -lt "$DURATION" ]; do
  step=$(( DURATION - elapsed < INTERVAL ? DURATION - elapsed : INTERVAL ))
  out=$("${LOAD[@]}" --seconds "$step")
  n=$(sed -n 's/.* create=\([0-9]*\).*/\1/p' <<<"$out")
  rate=$(sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
  total=$((total + n)); elapsed=$((elapsed + step)); first=${first:-$rate}
  printf '%8s %10s %9s %9s %10s %10s\n' "$elapsed" "$total" "$rate" "$p99" \
    $(( $(size "$T/s/kms.db-wal") >> 10 )) $(( $(size "$T/s/kms.db") >> 10 ))
done
echo "last interval at $((100 * rate / (first > 0 ? first : 1)))% of the first; load $(cut -d' ' -f1-3 /proc/loadavg)"
