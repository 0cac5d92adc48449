#!/usr/bin/env bash
# TLS 1.2 cipher suites: ECDHE key exchange only by default, so a recorded session
# cannot be decrypted later with the server's key; static RSA key exchange only when
# kms.conf's tls-ciphers asks for it; a tls-ciphers OpenSSL cannot use is refused at
# start. A real peer: the openssl s_client command.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
command -v openssl >/dev/null || { echo "FAIL: openssl command missing (scripts/deps.sh)"; exit 1; }
# RSA keys: static RSA key exchange needs an RSA server key, so only with one does
# refusing it mean anything.
"$VMCRYPT_KMS" init "$KMS_TMP/r" --client c --key-type rsa --listen 127.0.0.1:0 >/dev/null
d=$KMS_TMP/r

handshake() { # version option, cipher option, cipher; prints the negotiated suite or "refused"
  local out
  if out=$(openssl s_client -connect "127.0.0.1:$KMS_PORT" "$1" "$2" "$3" -CAfile "$d/ca.crt" \
             -cert "$d/client-c.crt" -key "$d/client-c.key" -brief </dev/null 2>&1) &&
     grep -q '^CONNECTION ESTABLISHED' <<<"$out"; then
    sed -n 's/^Ciphersuite: //p' <<<"$out"
  else
    echo refused
  fi
}
expect() { # what, got, want
  [ "$2" = "$3" ] || { echo "FAIL: $1: got '$2', expected '$3'"; exit 1; }
  echo "ok: $1: $2"
}

kms_start "$d"
expect "default: TLS 1.2 static RSA AES128-GCM-SHA256" "$(handshake -tls1_2 -cipher AES128-GCM-SHA256)" refused
expect "default: TLS 1.2 static RSA AES128-SHA256 (vCenter 7.0.3)" "$(handshake -tls1_2 -cipher AES128-SHA256)" refused
expect "default: TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256" "$(handshake -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)" \
  ECDHE-RSA-AES128-GCM-SHA256
expect "default: TLS 1.2 ECDHE-RSA-AES256-SHA384 (CBC)" "$(handshake -tls1_2 -cipher ECDHE-RSA-AES256-SHA384)" \
  ECDHE-RSA-AES256-SHA384
expect "default: TLS 1.2 ECDHE-RSA-AES128-SHA (SHA-1 CBC)" "$(handshake -tls1_2 -cipher ECDHE-RSA-AES128-SHA)" refused
expect "default: TLS 1.3" "$(handshake -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256)" TLS_AES_128_GCM_SHA256
kms_stop

# An operator who must serve an old client opts in, by name.
echo "tls-ciphers = ECDHE+AESGCM:AES128-GCM-SHA256" >> "$d/kms.conf"
kms_start "$d"
expect "tls-ciphers with AES128-GCM-SHA256: static RSA" "$(handshake -tls1_2 -cipher AES128-GCM-SHA256)" \
  AES128-GCM-SHA256
expect "tls-ciphers with AES128-GCM-SHA256: ECDHE still" "$(handshake -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)" \
  ECDHE-RSA-AES128-GCM-SHA256
expect "tls-ciphers without AES128-SHA256: refused" "$(handshake -tls1_2 -cipher AES128-SHA256)" refused
kms_stop

sed -i 's/^tls-ciphers = .*/tls-ciphers = NO-SUCH-SUITE/' "$d/kms.conf"
rc=0
"$VMCRYPT_KMS" serve --config "$d/kms.conf" >/dev/null 2>"$KMS_TMP/err" || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: serve with tls-ciphers = NO-SUCH-SUITE exited $rc"; exit 1; }
grep -q 'tls-ciphers = NO-SUCH-SUITE' "$KMS_TMP/err" || { echo "FAIL: unclear message: $(cat "$KMS_TMP/err")"; exit 1; }
echo "ok: unusable tls-ciphers refused at start: $(cat "$KMS_TMP/err")"
