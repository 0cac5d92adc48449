#!/usr/bin/env bash
# vmcrypt-kms's TLS I/O at its edges (split records and segments, large answers to
# slow readers, half-close, peers vanishing mid-request, SIGTERM mid-answer).
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" io
# Answers larger than what the server's socket takes (about 4 MiB on loopback).
sed -i 's/^max-message-size = .*/max-message-size = 8388608/' "$KMS_TMP/s/kms.conf"
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-tlsio.py" "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID"
# The script ended with a SIGTERM: the server must stop cleanly, by itself.
rc=0
wait "$KMS_PID" || rc=$?
KMS_PID=
if [ "$rc" -ne 0 ]; then
  echo "FAIL: vmcrypt-kms exited with $rc after SIGTERM" >&2; cat "$KMS_TMP/serve.err" >&2; exit 1
fi
echo "ok: stopped cleanly"
