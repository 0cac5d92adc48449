#!/usr/bin/env bash
# Malformed, oversized, lying, deeply nested and wrong-typed messages: the server
# answers Invalid Message or closes that connection, and keeps serving others.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" good bad
sed -i 's/^idle-timeout = .*/idle-timeout = 2/; s/^max-message-size = .*/max-message-size = 65536/' "$KMS_TMP/s/kms.conf"
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-badinput.py" "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID"
kill -0 "$KMS_PID" || { echo "FAIL: server died"; exit 1; }
kms_stop
