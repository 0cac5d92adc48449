#!/usr/bin/env bash
# Master passphrases: rotate-master-key refuses an empty, short, multi-line, group-
# readable or foreign passphrase file and changes nothing; a good one is stretched
# at the current scrypt cost; the same passphrase opens the store from a file with LF
# or CRLF and typed at the prompt (a real pseudo-terminal); a store sealed at the old
# cost (N=2^15, made here as the earlier version did, with Python's scrypt) still
# opens, with a notice, and a rotation raises its cost.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
H="$(dirname "$0")/kms-passphrase.py"
s=$KMS_TMP/s
kms_init "$s" alice
kms_start "$s"
"$PY" "$H" put "$KMS_PORT" "$s" "$KMS_TMP/key.json"
kms_stop

pass() { # name, printf format: a passphrase file of mode 0600
  printf "$2" > "$KMS_TMP/$1"
  chmod 600 "$KMS_TMP/$1"
}
state() { sha256sum "$s/master.key" "$s/kms.db"; sqlite3 "$s/kms.db" 'SELECT k, hex(v) FROM meta ORDER BY k'; }
refused() { # what, expected text, passphrase file
  local before rc=0
  before=$(state)
  "$VMCRYPT_KMS" rotate-master-key --config "$s/kms.conf" --new-passphrase-file "$3" >/dev/null 2>"$KMS_TMP/err" || rc=$?
  [ "$rc" = 1 ] || { echo "FAIL: $1: exit status $rc, expected 1 ($(cat "$KMS_TMP/err"))"; exit 1; }
  grep -qF -- "$2" "$KMS_TMP/err" || { echo "FAIL: $1: message lacks '$2': $(cat "$KMS_TMP/err")"; exit 1; }
  [ "$before" = "$(state)" ] || { echo "FAIL: $1: the master key or the store changed"; exit 1; }
  echo "ok: rotation to $1 refused: $(cat "$KMS_TMP/err")"
}
pass empty '\n';                             refused "an empty passphrase" "is empty" "$KMS_TMP/empty"
: > "$KMS_TMP/zero"; chmod 600 "$KMS_TMP/zero"; refused "an empty file" "is empty" "$KMS_TMP/zero"
pass a 'a\n';                                refused "the passphrase 'a'" "too short (1 characters)" "$KMS_TMP/a"
pass eleven 'eleven char\n';                 refused "an 11-character passphrase" "at least 12" "$KMS_TMP/eleven"
pass umlauts '\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\n'
refused "6 characters in 12 bytes" "too short (6 characters)" "$KMS_TMP/umlauts"
pass twolines 'correct horse battery\n\n';   refused "a passphrase and an empty line" "line break" "$KMS_TMP/twolines"
pass open 'correct horse battery\n'; chmod 644 "$KMS_TMP/open"
refused "a world-readable passphrase file" "chmod 600 $KMS_TMP/open" "$KMS_TMP/open"
pass theirs 'correct horse battery\n'; chown nobody "$KMS_TMP/theirs"
refused "a passphrase file of another user" "chown root $KMS_TMP/theirs" "$KMS_TMP/theirs"
kms_start "$s"
"$PY" "$H" check "$KMS_PORT" "$s" "$KMS_TMP/key.json"
kms_stop
echo "ok: the store still opens with its master key file"

# A good passphrase, from a file with CRLF; stretched at the current cost.
pass crlf 'correct horse battery\r\n'
"$VMCRYPT_KMS" rotate-master-key --config "$s/kms.conf" --new-passphrase-file "$KMS_TMP/crlf" >/dev/null
kdf=$(sqlite3 "$s/kms.db" "SELECT v FROM meta WHERE k = 'kdf'")
[ "$kdf" = "scrypt:17:8:1" ] || { echo "FAIL: new passphrase's KDF is '$kdf', expected scrypt:17:8:1"; exit 1; }
echo "ok: a new passphrase is stretched with scrypt N=2^17, r=8, p=1"
# The same passphrase: from a file with LF, with no newline, and typed.
pass lf 'correct horse battery\n'
pass bare 'correct horse battery'
for f in lf bare; do
  kms_start "$s" --passphrase-file "$KMS_TMP/$f"
  "$PY" "$H" check "$KMS_PORT" "$s" "$KMS_TMP/key.json"
  kms_stop
  echo "ok: the passphrase from a file ($f) opens the store"
done
"$PY" "$H" typed "$VMCRYPT_KMS" "$s/kms.conf" "correct horse battery" "$s" "$KMS_TMP/key.json"
rc=0
"$VMCRYPT_KMS" serve --config "$s/kms.conf" --passphrase-file "$KMS_TMP/twolines" >/dev/null 2>"$KMS_TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "line break" "$KMS_TMP/err" ||
  { echo "FAIL: serve with a two-line passphrase file: $rc $(cat "$KMS_TMP/err")"; exit 1; }
echo "ok: serve refuses a two-line passphrase file"

# A store sealed before the cost was raised: the master key was scrypt(N=2^15) of the
# passphrase with the salt in meta 'kdf-salt', and no 'kdf' row.
o=$KMS_TMP/old
kms_init "$o" alice
salt=00112233445566778899aabbccddeeff
rm "$o/master.key"
"$PY" "$H" legacy-key "correct horse battery" "$salt" "$o/master.key"
kms_start "$o"
"$PY" "$H" put "$KMS_PORT" "$o" "$KMS_TMP/oldkey.json"
kms_stop
sqlite3 "$o/kms.db" "INSERT INTO meta (k, v) VALUES ('kdf-salt', X'$salt')"
kms_start "$o" --passphrase-file "$KMS_TMP/lf"
"$PY" "$H" check "$KMS_PORT" "$o" "$KMS_TMP/oldkey.json"
kms_stop
grep -q 'older scrypt cost' "$KMS_TMP/serve.err" || { echo "FAIL: no notice about the old cost"; exit 1; }
echo "ok: a store sealed at the old scrypt cost opens, with a notice"
"$VMCRYPT_KMS" rotate-master-key --config "$o/kms.conf" --passphrase-file "$KMS_TMP/lf" \
  --new-passphrase-file "$KMS_TMP/lf" >/dev/null
[ "$(sqlite3 "$o/kms.db" "SELECT v FROM meta WHERE k = 'kdf'")" = "scrypt:17:8:1" ] ||
  { echo "FAIL: rotation did not raise the cost"; exit 1; }
kms_start "$o" --passphrase-file "$KMS_TMP/lf"
"$PY" "$H" check "$KMS_PORT" "$o" "$KMS_TMP/oldkey.json"
kms_stop
! grep -q 'older scrypt cost' "$KMS_TMP/serve.err" || { echo "FAIL: notice after the rotation"; exit 1; }
echo "ok: rotation re-sealed the old store at the current cost"
