#!/usr/bin/env bash
# The vCenter 7.0.3 request sequence (KMIP 1.1) replayed as raw TTLV, plus protocol
# edge cases (versions, batches, placeholders) and server-side key wrapping.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" vcenter
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-vcenter.py" "$KMS_PORT" "$KMS_TMP/s" vcenter
kms_stop
