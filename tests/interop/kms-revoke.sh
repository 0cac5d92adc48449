#!/usr/bin/env bash
# Revocation bites: a revoked (Deactivated) or compromised key is no longer handed out
# to its owner, nor used to Encrypt or Decrypt; a key created non-extractable (or
# Sensitive) is never handed out (in the clear); and a client certificate revoked
# in kms.conf (SHA-256 fingerprint, or a CRL of the client CA) is refused at the
# handshake after SIGHUP, and loses a connection it already had at its next request.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" alice bob carol
kms_init "$KMS_TMP/other" mallory
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-revoke.py" "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID" "$KMS_TMP/serve.err" "$KMS_TMP/other"
kms_stop
# A CRL that is not signed by the client CA is a mistake worth refusing to start.
echo "crl = bad-crl.pem" >>"$KMS_TMP/s/kms.conf"
if "$VMCRYPT_KMS" serve --config "$KMS_TMP/s/kms.conf" --listen 127.0.0.1:0 >/dev/null 2>"$KMS_TMP/err"; then
  echo "FAIL: served with a CRL of another CA"; exit 1
fi
grep -q 'not signed by a client CA' "$KMS_TMP/err" || { echo "FAIL: no reason in: $(cat "$KMS_TMP/err")"; exit 1; }
echo "ok: a CRL of another CA refused at start"
