#!/usr/bin/env bash
# Client identity from unusual certificates of the trusted CA (BMPString CNs, NUL or
# control characters, two CNs, an empty CN): see kms-identity.py.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" alice
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-identity.py" "$KMS_PORT" "$KMS_TMP/s"
kms_stop
grep -q 'Refusing client certificate [0-9a-f]*: more than one subject CN' "$KMS_TMP/serve.err" ||
  { echo "FAIL: refusal not logged: $(cat "$KMS_TMP/serve.err")"; exit 1; }
echo "ok: refusals logged"
