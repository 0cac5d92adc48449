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
