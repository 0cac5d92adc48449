#!/usr/bin/env bash
# vmcrypt's KMIP client (`vmcrypt kms ...`) against PyKMIP's server, a real peer:
# the key life cycle (create, get, activate, locate, attributes, revoke, destroy),
# server-side encryption (wrap/unwrap with GCM and CBC, the modes PyKMIP has), KMIP
# 1.0/1.4/2.0 and version negotiation, failover, a config file, and the errors the
# key providers must tell apart: unreachable, untrusted server, server rejecting our
# certificate, expired client certificate, missing key, revoked/not active key.
. "$(dirname "$0")/../lib.sh"

[ -n "${VMCRYPT:-}" ] || VMCRYPT=${VMCRYPT_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}/src/cli/vmcrypt
[ -x "$VMCRYPT" ] || die "vmcrypt binary not found at $VMCRYPT: build it first"
"$VMCRYPT" kms --help >/dev/null 2>&1 || die "'$VMCRYPT kms' is not available in this build"
[ -x /usr/bin/pykmip-server ] || die "/usr/bin/pykmip-server is missing: run scripts/deps.sh (python3-pykmip)"
require_python_cryptography

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

note "certificates"
"$PY" "$(dirname "$0")/kmip-client-certs.py" "$T"
PORT=$(free_port)
CLOSED=$(free_port) # nobody listens there
mkdir -p "$T/policies"
cat >"$T/server.conf" <<CONF
[server]
hostname=127.0.0.1
port=$PORT
certificate_path=$T/server.crt
key_path=$T/server.key
ca_path=$T/ca.crt
auth_suite=TLS1.2
policy_path=$T/policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$T/pykmip.db
CONF

note "starting PyKMIP on port $PORT"
/usr/bin/pykmip-server -f "$T/server.conf" -l "$T/server.log" >"$T/server.out" 2>&1 &
track_pid $!
for _ in $(seq 1 100); do
        "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
        sleep 0.1
done
"$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null ||
        die "PyKMIP did not start: $(tail -5 "$T/server.out" "$T/server.log" 2>/dev/null)"
# PyKMIP forks helper processes, and $! is not always the one that listens: track
# every process started with this test's own config file (by pid) for the cleanup.
for p in $(pgrep -f -- "-f $T/server.conf"); do track_pid "$p"; done

TLS=(--cert "$T/client.crt" --key "$T/client.key" --ca "$T/ca.crt")
K=(--server "127.0.0.1:$PORT" "${TLS[@]}")

note "query and version discovery"
expect_rc 0 query vmc kms query "${K[@]}"
assert_file_contains "$T/query.out" '^Versions: 2.0 1.4' "DiscoverVersions"
assert_file_contains "$T/query.out" 'Vendor: PyKMIP' "Query server information"

note "create, get (hidden, --reveal, --out), activate"
expect_rc 0 create vmc kms create "${K[@]}" --name disk-kek-1
UID1=$(cat "$T/create.out")
[ -n "$UID1" ] || die "create printed no id"
expect_rc 0 get vmc kms get "${K[@]}" "$UID1"
assert_file_contains "$T/get.out" '^Cryptographic Length: 256$' "key length"
assert_file_contains "$T/get.out" 'hidden' "key hidden without --reveal"
grep -Eq '[0-9a-f]{64}' "$T/get.out" && die "get printed key material without --reveal"
expect_rc 0 reveal vmc kms get "${K[@]}" --reveal "$UID1"
HEX=$(sed -n 's/^Key Material: //p' "$T/reveal.out")
[[ "$HEX" =~ ^[0-9a-f]{64}$ ]] || die "--reveal did not print 32 bytes of hex: '$HEX'"
expect_rc 0 getout vmc kms get "${K[@]}" --out "$T/key.bin" "$UID1"
assert_eq "$(stat -c %a "$T/key.bin")" 600 "mode of --out file"
assert_eq "$(xxd -p -c 64 "$T/key.bin")" "$HEX" "--out bytes equal --reveal hex"
expect_rc 5 getout2 vmc kms get "${K[@]}" --out "$T/key.bin" "$UID1" # never overwrites (EEXIST)
expect_rc 0 state0 vmc kms attrs "${K[@]}" "$UID1" State
assert_eq "$(cat "$T/state0.out")" "State: Pre-Active" "state after create"
expect_rc 0 activate vmc kms activate "${K[@]}" "$UID1"
expect_rc 0 state1 vmc kms attrs "${K[@]}" "$UID1" State "Cryptographic Algorithm"
assert_file_contains "$T/state1.out" '^State: Active$' "state after activate"
assert_file_contains "$T/state1.out" '^Cryptographic Algorithm: AES$' "algorithm"

note "a Username and Password credential is a valid header for PyKMIP"
printf 'pw\n' >"$T/pw"
expect_rc 0 cred vmc kms attrs "${K[@]}" --username operator --password-file "$T/pw" "$UID1" State
assert_eq "$(cat "$T/cred.out")" "State: Active" "attrs with a credential"

note "locate by name and by state"
expect_rc 0 create2 vmc kms create "${K[@]}" --name other-key --length 128
UID2=$(cat "$T/create2.out")
expect_rc 0 loc1 vmc kms locate "${K[@]}" --name disk-kek-1
assert_eq "$(cat "$T/loc1.out")" "$UID1" "locate by name"
expect_rc 0 loc2 vmc kms locate "${K[@]}" --state pre-active --type symmetric-key
assert_eq "$(cat "$T/loc2.out")" "$UID2" "locate by state"
expect_rc 0 loc3 vmc kms locate "${K[@]}" --name no-such-name
assert_eq "$(cat "$T/loc3.out")" "" "locate without match"

note "register, then get the same bytes back"
head -c 32 /dev/urandom >"$T/mine.bin"
expect_rc 0 register vmc kms register "${K[@]}" --in "$T/mine.bin" --name imported
UID3=$(cat "$T/register.out")
expect_rc 0 getreg vmc kms get "${K[@]}" --reveal "$UID3"
assert_eq "$(sed -n 's/^Key Material: //p' "$T/getreg.out")" "$(xxd -p -c 64 "$T/mine.bin")" "registered key"

note "wrap and unwrap on the server (GCM, CBC, server-chosen IV)"
head -c 32 /dev/urandom >"$T/secret"
for mode in gcm cbc; do
        expect_rc 0 wrap-$mode vmc kms wrap "${K[@]}" --mode $mode --in "$T/secret" --out "$T/w.$mode" "$UID1"
        cmp -s "$T/secret" "$T/w.$mode" && die "wrap output equals its input"
        expect_rc 0 unwrap-$mode vmc kms unwrap "${K[@]}" --in "$T/w.$mode" --out "$T/u.$mode" "$UID1"
        cmp "$T/secret" "$T/u.$mode" || die "unwrap($mode) did not give the secret back"
done
vmc kms wrap "${K[@]}" --random-iv "$UID1" <"$T/secret" >"$T/w.rand" || die "wrap --random-iv failed"
vmc kms unwrap "${K[@]}" "$UID1" <"$T/w.rand" | cmp - "$T/secret" || die "unwrap of a server-IV blob"
# A tampered blob must not decrypt (PyKMIP reports the tag failure as General Failure).
"$PY" -c 'import sys; d=bytearray(open(sys.argv[1],"rb").read()); d[-1]^=1; open(sys.argv[2],"wb").write(d)' \
        "$T/w.gcm" "$T/w.bad"
rc=0; vmc kms unwrap "${K[@]}" --in "$T/w.bad" "$UID1" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
[ $rc -ne 0 ] || die "a tampered blob was unwrapped"
[ ! -s "$T/bad.out" ] || die "a tampered blob produced output"
# A mode the server lacks is reported as the server's answer.
expect_rc 2 wrap-kwp vmc kms wrap "${K[@]}" --mode aes-key-wrap-padding --in "$T/secret" "$UID1"
assert_file_contains "$T/wrap-kwp.err" 'Encrypt failed: Invalid Field' "unsupported mode message"

note "KMIP versions: 1.0, 2.0 and negotiated"
for v in 1.0 2.0 auto; do
        expect_rc 0 cv$v vmc kms create "${K[@]}" --kmip-version $v --name "ver-$v"
        U=$(cat "$T/cv$v.out")
        expect_rc 0 av$v vmc kms activate "${K[@]}" --kmip-version $v "$U"
        expect_rc 0 sv$v vmc kms attrs "${K[@]}" --kmip-version $v "$U" State Name
        assert_file_contains "$T/sv$v.out" '^State: Active$' "state via KMIP $v"
        assert_file_contains "$T/sv$v.out" "^Name: ver-$v\$" "name via KMIP $v"
        expect_rc 0 lv$v vmc kms locate "${K[@]}" --kmip-version $v --name "ver-$v"
        assert_eq "$(cat "$T/lv$v.out")" "$U" "locate via KMIP $v"
        expect_rc 0 gv$v vmc kms get "${K[@]}" --kmip-version $v "$U"
done

note "config file"
cat >"$T/kms.json" <<JSON
{ "servers": ["127.0.0.1:$CLOSED", "127.0.0.1:$PORT"],
  "cert": "$T/client.crt", "key": "$T/client.key", "ca": "$T/ca.crt", "timeout_ms": 3000 }
JSON
expect_rc 0 cfg vmc kms attrs --config "$T/kms.json" "$UID1" State
assert_eq "$(cat "$T/cfg.out")" "State: Active" "attrs via --config (with failover)"
# Relative file names are relative to the config file, not to the current directory.
mkdir -p "$T/conf"
cp "$T/client.crt" "$T/client.key" "$T/ca.crt" "$T/conf/"
cat >"$T/conf/kms.json" <<JSON
{ "servers": ["127.0.0.1:$PORT"], "cert": "client.crt", "key": "client.key", "ca": "ca.crt" }
JSON
(cd / && vmc kms attrs --config "$T/conf/kms.json" "$UID1" State) >"$T/rel.out" || die "config with relative paths"
assert_eq "$(cat "$T/rel.out")" "State: Active" "attrs via a config with relative paths"
echo '{ "servers": "oops" }' >"$T/bad.json"
expect_rc 2 badcfg vmc kms query --config "$T/bad.json"
assert_file_contains "$T/badcfg.err" 'servers' "bad config names the setting"

note "failover: a closed port first, PyKMIP second"
expect_rc 0 failover vmc kms create --server "127.0.0.1:$CLOSED" --server "127.0.0.1:$PORT" "${TLS[@]}"
[ -n "$(cat "$T/failover.out")" ] || die "failover create printed no id"

note "errors the key providers tell apart"
expect_rc 7 unreachable vmc kms query --server "127.0.0.1:$CLOSED" "${TLS[@]}"
assert_file_contains "$T/unreachable.err" "127.0.0.1:$CLOSED: cannot connect: Connection refused" "unreachable"
expect_rc 3 untrusted vmc kms query "${K[@]}" --ca "$T/other-ca.crt"
assert_file_contains "$T/untrusted.err" "certificate is not trusted" "server not trusted by us"
expect_rc 3 stranger vmc kms query --server "127.0.0.1:$PORT" --cert "$T/stranger.crt" --key "$T/stranger.key" --ca "$T/ca.crt"
assert_file_contains "$T/stranger.err" "rejected our client certificate" "our certificate not trusted"
expect_rc 8 expired vmc kms query --server "127.0.0.1:$PORT" --cert "$T/expired.crt" --key "$T/expired.key" --ca "$T/ca.crt"
assert_file_contains "$T/expired.err" "expired" "expired client certificate"
expect_rc 3 wrongname vmc kms query --server "localhost:$PORT" "${TLS[@]}"
assert_file_contains "$T/wrongname.err" "hostname mismatch" "server name checked"
expect_rc 0 noverify vmc kms query --server "localhost:$PORT" "${TLS[@]}" --no-verify-name
expect_rc 4 missing vmc kms get "${K[@]}" 999999
assert_file_contains "$T/missing.err" "Item Not Found" "missing key"
# Not active: Encrypt with a Pre-Active key; the client asks for the state to say why.
expect_rc 8 notactive vmc kms wrap "${K[@]}" --in "$T/secret" "$UID2"
assert_file_contains "$T/notactive.err" "is Pre-Active" "not-active key"
expect_rc 8 destroy-active vmc kms destroy "${K[@]}" "$UID1"
assert_file_contains "$T/destroy-active.err" "Permission Denied" "destroying an active key"

note "revoke, then destroy"
expect_rc 0 revoke vmc kms revoke "${K[@]}" --reason key-compromise --message "test" "$UID1"
expect_rc 0 state2 vmc kms attrs "${K[@]}" "$UID1" State
assert_eq "$(cat "$T/state2.out")" "State: Compromised" "state after revoke"
expect_rc 8 revoked vmc kms wrap "${K[@]}" --in "$T/secret" "$UID1"
assert_file_contains "$T/revoked.err" "is Compromised" "revoked key"
assert_file_contains "$T/revoked.err" "revoked" "revoked key hint"
expect_rc 0 destroy vmc kms destroy "${K[@]}" "$UID1"
expect_rc 4 gone vmc kms get "${K[@]}" "$UID1"

note "usage errors"
expect_rc 2 noserver vmc kms query
expect_rc 2 badver vmc kms query "${K[@]}" --kmip-version 3.7
expect_rc 2 badattr vmc kms create "${K[@]}" --attr Vendor=x
expect_rc 0 help vmc kms wrap --help
assert_file_contains "$T/help.out" '^Usage: vmcrypt kms wrap' "help text"
