#!/usr/bin/env bash
# Access control: ownership, Item Not Found for other identities, a policy group,
# caller-chosen IVs only from identities that may Decrypt, and refused certificates
# (other CA, expired, not yet valid, none).
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" alice bob carol dave erin
"$VMCRYPT_KMS" issue-client "$KMS_TMP/s" expired --not-before-days -30 --days 10
"$VMCRYPT_KMS" issue-client "$KMS_TMP/s" future --not-before-days 5 --days 10
kms_init "$KMS_TMP/other" mallory
cat >> "$KMS_TMP/s/kms.conf" <<'CONF'
[group auditors]
members = carol
operations = locate, get-attributes
[group encryptors]
members = dave
operations = encrypt
[group cryptors]
members = erin
operations = encrypt, decrypt
CONF
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-access.py" "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/other"
kms_stop
# init made key files owner-only.
for f in ca.key server.key client-alice.key master.key kms.db audit.log; do
  m=$(stat -c %a "$KMS_TMP/s/$f")
  [ "$m" = 600 ] || { echo "FAIL: $f has mode $m, expected 600"; exit 1; }
done
echo "ok: key files, database and audit log are 0600"
# A master key readable by others is refused with a clear message.
chmod 640 "$KMS_TMP/s/master.key"
if "$VMCRYPT_KMS" serve --config "$KMS_TMP/s/kms.conf" --listen 127.0.0.1:0 >/dev/null 2>"$KMS_TMP/err"; then
  echo "FAIL: served with a group-readable master key"; exit 1
fi
grep -q 'chmod 600' "$KMS_TMP/err" || { echo "FAIL: no advice in: $(cat "$KMS_TMP/err")"; exit 1; }
echo "ok: group-readable master key refused"
