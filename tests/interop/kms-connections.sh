#!/usr/bin/env bash
# Thousands of concurrent TLS connections to one vmcrypt-kms, each answered; bounded
# memory per connection.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
[ -z "${KMS_RSS_LIMIT_KIB:-}" ] || export KMS_CONN_LIMIT_KIB=2048  # ASan (see kms-lib.sh)
kms_init "$KMS_TMP/s" many
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-connections.py" "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID" "${KMS_CONNECTIONS:-2000}"
kms_stop

# Under a low open-file limit the server lowers its connection limit (limit - 128),
# refuses the surplus, and recovers when they leave.
sed -i 's/^max-connections = .*/max-connections = 20000/' "$KMS_TMP/s/kms.conf"
: > "$KMS_TMP/low.out"
( ulimit -n 300; exec "$VMCRYPT_KMS" serve --config "$KMS_TMP/s/kms.conf" ) >"$KMS_TMP/low.out" 2>"$KMS_TMP/low.err" &
KMS_PID=$!
for _ in $(seq 100); do grep -q '^listening on' "$KMS_TMP/low.out" && break; sleep 0.05; done
KMS_PORT=$(sed -n 's/^listening on //p' "$KMS_TMP/low.out")
grep -q 'max-connections lowered to 172' "$KMS_TMP/low.err" || { echo "FAIL: limit not lowered"; cat "$KMS_TMP/low.err"; exit 1; }
"$PY" "$(dirname "$0")/kms-connections.py" "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID" 250 172
kms_stop
