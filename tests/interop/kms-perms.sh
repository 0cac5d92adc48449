#!/usr/bin/env bash
# Ownership and modes of the server's state: init into a directory that another user
# owns or may write to, and serve or rotate-master-key with a configuration, key,
# certificate, database, audit log or directory that another user owns or may write
# to (or, for secrets, read) are refused with a message that names the file and the
# fix, exit status 1, and nothing changed. Runs as root; "nobody" plays the other user.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
[ "$(id -u)" = 0 ] || { echo "FAIL: kms-perms.sh must run as root (it chowns files to nobody)"; exit 1; }
id nobody >/dev/null 2>&1 || { echo "FAIL: no user 'nobody' to play another user"; exit 1; }

snapshot() { # dir: names, modes, owners, sizes, times and contents of everything in it
  # but the operator's audit log, which keeps a refused command's attempt (as the
  # server's log keeps a refused request); directories without their times (a
  # file made or removed shows as itself).
  (cd "$1" && { find . -type d -printf '%p %m %u\n'; find . ! -type d ! -name operator-audit.log \
    -printf '%p %m %u %s %T@\n'; } | sort && find . -type f ! -name operator-audit.log -exec sha256sum {} + | sort)
}

refused() { # what, expected text in the message, command...
  local what=$1 want=$2; shift 2
  local before after rc=0
  before=$(snapshot "$W")
  # A server that does not refuse would serve on: stop it after a while.
  timeout -s KILL 20 "$@" >/dev/null 2>"$KMS_TMP/refused.err" || rc=$?
  local err; err=$(cat "$KMS_TMP/refused.err")
  after=$(snapshot "$W")
  [ "$rc" = 1 ] || { echo "FAIL: $what: exit status $rc, expected 1 (stderr: $err)"; exit 1; }
  grep -qF -- "$want" <<<"$err" || { echo "FAIL: $what: message lacks '$want': $err"; exit 1; }
  [ "$before" = "$after" ] || { echo "FAIL: $what: the state changed:"; diff <(echo "$before") <(echo "$after") || true; exit 1; }
  echo "ok: $what refused: $err"
}

# Everything the tests make is in W, whose snapshot must not change on refusal.
W=$KMS_TMP/w
mkdir "$W"

# init into an existing directory.
mkdir "$W/theirs" "$W/open" "$W/theirs-closed"
chown nobody "$W/theirs" "$W/theirs-closed"
chmod 777 "$W/theirs" "$W/open"
chmod 700 "$W/theirs-closed"
refused "init into a world-writable directory of another user" "chown root $W/theirs" \
  "$VMCRYPT_KMS" init "$W/theirs" --client a --listen 127.0.0.1:0
refused "init into a world-writable directory" "chmod go-w $W/open" \
  "$VMCRYPT_KMS" init "$W/open" --client a --listen 127.0.0.1:0
refused "init into another user's directory" "chown root $W/theirs-closed" \
  "$VMCRYPT_KMS" init "$W/theirs-closed" --client a --listen 127.0.0.1:0
mkdir -m 755 "$W/mine"
"$VMCRYPT_KMS" init "$W/mine" --client a --listen 127.0.0.1:0 >/dev/null
echo "ok: init into an existing directory of ours, 0755"
rm -rf "$W/theirs" "$W/open" "$W/theirs-closed" "$W/mine"

# A state directory served once (so that kms.db and audit.log exist), then spoilt
# one way at a time.
kms_init "$W/s" alice
s=$W/s
kms_start "$s"
kms_stop
for f in ca.crt server.crt client-alice.crt kms.conf; do
  [ "$(stat -c %a "$s/$f")" = 644 ] || { echo "FAIL: $f has mode $(stat -c %a "$s/$f")"; exit 1; }
done
[ "$(stat -c %a "$s")" = 700 ] || { echo "FAIL: the state directory has mode $(stat -c %a "$s")"; exit 1; }
echo "ok: init made certificates and kms.conf 0644, the directory 0700"

serve=("$VMCRYPT_KMS" serve --config "$s/kms.conf" --listen 127.0.0.1:0)
spoil() { # what, fix message, command that spoils (undone by restore), then refused by serve
  local what=$1 want=$2 how=$3
  eval "$how"
  refused "serve with $what" "$want" "${serve[@]}"
}
restore() {
  chown -R root "$s"
  chmod 700 "$s"
  chmod 644 "$s"/*.crt "$s/kms.conf"
  chmod 600 "$s"/*.key "$s/kms.db" "$s/audit.log"
}

spoil "a world-writable kms.conf" "chmod go-w $s/kms.conf" "chmod 666 $s/kms.conf"; restore
spoil "a kms.conf of another user" "chown root $s/kms.conf" "chown nobody $s/kms.conf"; restore
spoil "a 0644 server.key" "chmod 600 $s/server.key" "chmod 644 $s/server.key"; restore
spoil "a master key of another user" "chown root $s/master.key" "chown nobody $s/master.key"; restore
spoil "a group-readable master key" "chmod 600 $s/master.key" "chmod 640 $s/master.key"; restore
spoil "a ca.crt of another user" "chown root $s/ca.crt" "chown nobody $s/ca.crt"; restore
spoil "a group-writable ca.crt" "chmod go-w $s/ca.crt" "chmod 664 $s/ca.crt"; restore
spoil "a world-writable state directory" "chmod go-w $s" "chmod 777 $s"; restore
spoil "a state directory of another user" "chown root $s" "chown nobody $s"; restore
spoil "a 0644 database" "chmod 600 $s/kms.db" "chmod 644 $s/kms.db"; restore
spoil "a database of another user" "chown root $s/kms.db" "chown nobody $s/kms.db"; restore
spoil "a world-writable audit log" "chmod go-w $s/audit.log" "chmod 666 $s/audit.log"; restore
spoil "a server.crt that is a symlink into another user's directory" "chown root $W/evil" \
  "mkdir -m 755 $W/evil; cp -p $s/server.crt $W/evil/; chown nobody $W/evil; ln -sf $W/evil/server.crt $s/server.crt.link; sed -i 's#^tls-cert = .*#tls-cert = server.crt.link#' $s/kms.conf"
sed -i 's#^tls-cert = .*#tls-cert = server.crt#' "$s/kms.conf"; rm -rf "$s/server.crt.link" "$W/evil"; restore
chown nobody "$s/master.key"
refused "rotate-master-key with a master key of another user" "chown root $s/master.key" \
  "$VMCRYPT_KMS" rotate-master-key --config "$s/kms.conf"
restore
chmod 666 "$s/ca.key"
refused "issue-client with a world-writable ca.key" "chmod 600 $s/ca.key" \
  "$VMCRYPT_KMS" issue-client "$s" bob
grep -q '"operation":"issue-client","result":"failed","object":"bob"' "$s/operator-audit.log" ||
  { echo "FAIL: the refused issue-client is not in the operator's audit log"; exit 1; }
echo "ok: the refused issue-client is in the operator's audit log"
restore

# Root may own what the server reads (it could change it anyway); here root is also
# the service user, so this only shows that a clean state still serves.
kms_start "$s"
kms_stop
echo "ok: the restored state directory serves"
