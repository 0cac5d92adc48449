#!/usr/bin/env bash
# The audit log fails closed and shows tampering: a full file system under the audit
# log refuses every request (nothing stored, nothing half-written); refused
# handshakes and Undo requests are audited with the peer and certificate; and
# 'vmcrypt-kms audit-verify' finds an edited, a removed and a cut line.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" alice
kms_init "$KMS_TMP/other" mallory
AFS="$KMS_TMP/afs"
mkdir -p "$AFS"
# A small file system of its own for the audit log, to fill up.
if ! mount -t tmpfs -o size=128k,nr_inodes=64,mode=0700 tmpfs "$AFS"; then
  echo "FAIL: cannot mount a tmpfs for the full-file-system test (needs root: CAP_SYS_ADMIN)" >&2
  exit 1
fi
audit_cleanup() {
  if [ -n "${KMS_PID:-}" ]; then kill -9 "$KMS_PID" 2>/dev/null || true; wait "$KMS_PID" 2>/dev/null || true; fi
  KMS_PID=
  umount "$AFS" 2>/dev/null || true
  cleanup
}
trap audit_cleanup EXIT
sed -i "s|^audit-log = .*|audit-log = $AFS/audit.log|" "$KMS_TMP/s/kms.conf"
grep -q '^audit-failure = refuse' "$KMS_TMP/s/kms.conf" || { echo "FAIL: kms.conf has no audit-failure"; exit 1; }
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-audit.py" full "$KMS_PORT" "$KMS_TMP/s" "$KMS_TMP/other" "$AFS"
kms_stop
grep -q 'audit lines could not be written' "$KMS_TMP/serve.err" ||
  { echo "FAIL: the refused audit lines were not reported in the log"; exit 1; }
echo "ok: the failed audit lines were reported: $(grep -m1 'audit lines could not' "$KMS_TMP/serve.err")"

# The chain holds as written; each kind of tampering shows, at its line.
V() { "$VMCRYPT_KMS" audit-verify --state-dir "$KMS_TMP/s" "$@"; }
V > "$KMS_TMP/v.out" || { echo "FAIL: audit-verify on the untouched log:"; cat "$KMS_TMP/v.out"; exit 1; }
echo "ok: $(tail -1 "$KMS_TMP/v.out")"
LOG="$AFS/audit.log"
n=$(wc -l < "$LOG")
expect_break() { # what, file, line
  local rc=0
  V "$2" > "$KMS_TMP/v.out" || rc=$?
  if [ "$rc" -ne 1 ] || ! grep -q "^$2:$3: " "$KMS_TMP/v.out"; then
    echo "FAIL: audit-verify did not find the $1 at line $3 (exit $rc):"; cat "$KMS_TMP/v.out"; exit 1
  fi
  echo "ok: $1 found: $(grep -m1 "^$2:$3: " "$KMS_TMP/v.out")"
}
sed '2s/"result":"success"/"result":"failed"/' "$LOG" > "$KMS_TMP/edited.log"
cmp -s "$LOG" "$KMS_TMP/edited.log" && { echo "FAIL: line 2 was not edited"; exit 1; }
expect_break "edited line" "$KMS_TMP/edited.log" 2
sed '3d' "$LOG" > "$KMS_TMP/removed.log"
expect_break "removed line" "$KMS_TMP/removed.log" 3
head -c -25 "$LOG" > "$KMS_TMP/cut.log"
expect_break "cut last line" "$KMS_TMP/cut.log" "$n"

# audit-failure = continue: the old behaviour, on purpose.
sed -i 's/^audit-failure = .*/audit-failure = continue/' "$KMS_TMP/s/kms.conf"
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-audit.py" continue "$KMS_PORT" "$KMS_TMP/s" "$AFS"
kms_stop

# The operator's commands that change credentials and keys are audited in the
# operator's log: a line before (pending), one with the result; its chain holds.
OPLOG="$KMS_TMP/s/operator-audit.log"
"$VMCRYPT_KMS" issue-client "$KMS_TMP/s" carol --days 30 >/dev/null || { echo "FAIL: issue-client carol"; exit 1; }
"$VMCRYPT_KMS" rotate-master-key --state-dir "$KMS_TMP/s" >/dev/null || { echo "FAIL: rotate-master-key"; exit 1; }
for want in '"operation":"issue-client","result":"pending","object":"carol","message":"client certificate for 30 days"' \
            '"operation":"issue-client","result":"success","object":"carol"' \
            '"operation":"rotate-master-key","result":"pending","message":"to a new master key file"' \
            '"operation":"rotate-master-key","result":"success"'; do
  grep -qF "\"client\":\"local:$(id -un)\",\"client_sha256\":\"\",\"peer\":\"local\",$want" "$OPLOG" ||
    { echo "FAIL: no operator audit line with $want:"; cat "$OPLOG"; exit 1; }
done
V "$OPLOG" > "$KMS_TMP/v.out" || { echo "FAIL: audit-verify on the operator's log:"; cat "$KMS_TMP/v.out"; exit 1; }
echo "ok: the operator's changes audited: $(tail -1 "$KMS_TMP/v.out")"

# A server whose certificate ends within 30 days says so at start: a warning and
# an audit line (then daily).
"$VMCRYPT_KMS" init "$KMS_TMP/short" --client dave --days 10 --listen 127.0.0.1:0 >/dev/null
kms_start "$KMS_TMP/short"
for _ in $(seq 50); do grep -q "certificate expiring" "$KMS_TMP/short/audit.log" 2>/dev/null && break; sleep 0.1; done
kms_stop
grep -q "The server certificate (tls-cert) $KMS_TMP/short/server.crt ends in 10 days: issue a new one" "$KMS_TMP/serve.err" ||
  { echo "FAIL: no warning of the server certificate's end:"; cat "$KMS_TMP/serve.err"; exit 1; }
grep -q '"operation":"(certificate expiring)","result":"success","message":"The server certificate (tls-cert) .* ends in 10 days' \
  "$KMS_TMP/short/audit.log" || { echo "FAIL: no audit line of the server certificate's end"; exit 1; }
echo "ok: the server's certificate, 10 days from its end, warned of and audited"
