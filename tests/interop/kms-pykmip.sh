#!/usr/bin/env bash
# PyKMIP's client (Debian python3-pykmip) against vmcrypt-kms at KMIP 1.1, 1.2, 1.4
# and 2.0: create, get, activate, get_attributes, locate, encrypt/decrypt, revoke,
# destroy (and get after destroy fails), register. Then a clean SIGTERM stop.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"

# Every subcommand has a manual, and a usage error exits 2.
for cmd in serve init issue-client rotate-master-key; do
  grep -q "^Usage: vmcrypt-kms $cmd" <<<"$("$VMCRYPT_KMS" "$cmd" --help)" || { echo "FAIL: $cmd --help"; exit 1; }
done
rc=0; "$VMCRYPT_KMS" frobnicate 2>/dev/null || rc=$?
[ "$rc" = 2 ] || { echo "FAIL: unknown command exits $rc, not 2"; exit 1; }

kms_init "$KMS_TMP/s" alice
kms_start "$KMS_TMP/s"
for v in 1.1 1.2 1.4 2.0; do
  "$PY" "$(dirname "$0")/kms-pykmip.py" "$KMS_PORT" "$KMS_TMP/s" alice "$v"
done
kms_stop
# The audit log recorded the operations, and never key material.
grep -q '"operation":"Create"' "$KMS_TMP/s/audit.log" || { echo "FAIL: no Create in the audit log"; exit 1; }
grep -q '"operation":"Destroy"' "$KMS_TMP/s/audit.log" || { echo "FAIL: no Destroy in the audit log"; exit 1; }
if grep -qi '4242424242424242' "$KMS_TMP/s/audit.log"; then echo "FAIL: key material in the audit log"; exit 1; fi
echo "ok: PyKMIP lifecycle at 1.1, 1.2, 1.4, 2.0"
