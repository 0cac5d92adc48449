#!/usr/bin/env bash
# SIGKILL vmcrypt-kms during a stream of Creates and Registers from 4 connections;
# after a restart every acknowledged key is there with the same bytes. Then a master
# key rotation, and the keys are still intact under the new master key.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" writer
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-durability.py" stream "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID" "$KMS_TMP/acked.json"
wait "$KMS_PID" 2>/dev/null || true
KMS_PID=
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-durability.py" verify "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/acked.json"
kms_stop

# Graceful stop under load: SIGTERM during the stream; the server finishes what is in
# flight and exits 0, and everything acknowledged is there.
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-durability.py" stream "$KMS_PORT" "$KMS_TMP/s" "$KMS_PID" "$KMS_TMP/acked2.json" TERM
rc=0; wait "$KMS_PID" || rc=$?; KMS_PID=
[ "$rc" = 0 ] || { echo "FAIL: exit status $rc after SIGTERM under load"; cat "$KMS_TMP/serve.err"; exit 1; }
grep -q 'Received SIGTERM' "$KMS_TMP/serve.err" || { echo "FAIL: no shutdown message"; exit 1; }
echo "ok: SIGTERM under load: clean exit"
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-durability.py" verify "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/acked2.json"
kms_stop

# A commit that fails (here an SQLite trigger refuses the client's rows): Creates
# answered before their commit (see server.c) must still end as failures.
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-durability.py" failcommit "$KMS_PORT" "$KMS_TMP/s"
kms_stop

old=$(sha256sum "$KMS_TMP/s/master.key")
"$VMCRYPT_KMS" rotate-master-key --config "$KMS_TMP/s/kms.conf"
[ "$old" != "$(sha256sum "$KMS_TMP/s/master.key")" ] || { echo "FAIL: master key unchanged"; exit 1; }
[ "$(stat -c %a "$KMS_TMP/s/master.key")" = 600 ] || { echo "FAIL: new master key not 0600"; exit 1; }
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-durability.py" verify "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/acked.json"
kms_stop
# A crash after the rotation committed but before the key file was renamed: the old
# key is still at master.key and the new one at master.key.new. The next start must
# notice and finish the rotation.
cp -p "$KMS_TMP/s/master.key" "$KMS_TMP/old.key"
"$VMCRYPT_KMS" rotate-master-key --config "$KMS_TMP/s/kms.conf" >/dev/null
mv "$KMS_TMP/s/master.key" "$KMS_TMP/s/master.key.new"
cp -p "$KMS_TMP/old.key" "$KMS_TMP/s/master.key"
kms_start "$KMS_TMP/s"
grep -q 'interrupted master key rotation' "$KMS_TMP/serve.err" || { echo "FAIL: rotation not finished"; exit 1; }
[ ! -e "$KMS_TMP/s/master.key.new" ] || { echo "FAIL: master.key.new left behind"; exit 1; }
"$PY" "$(dirname "$0")/kms-durability.py" verify "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/acked.json"
kms_stop
echo "ok: interrupted rotation finished at start"

# Switch to a passphrase; serve with --passphrase-file; the old key file no longer opens it.
printf 'correct horse battery staple\n' > "$KMS_TMP/pass"
chmod 600 "$KMS_TMP/pass"
"$VMCRYPT_KMS" rotate-master-key --config "$KMS_TMP/s/kms.conf" --new-passphrase-file "$KMS_TMP/pass" >/dev/null
if "$VMCRYPT_KMS" serve --config "$KMS_TMP/s/kms.conf" --listen 127.0.0.1:0 >/dev/null 2>"$KMS_TMP/err"; then
  echo "FAIL: the old master key file still opens the store"; exit 1
fi
grep -q 'does not match' "$KMS_TMP/err" || { echo "FAIL: unclear message: $(cat "$KMS_TMP/err")"; exit 1; }
kms_start "$KMS_TMP/s" --passphrase-file "$KMS_TMP/pass"
"$PY" "$(dirname "$0")/kms-durability.py" verify "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/acked.json"
kms_stop
echo "ok: durable across SIGKILL and master key rotations (key file, then passphrase)"
