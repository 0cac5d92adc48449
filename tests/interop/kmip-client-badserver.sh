#!/usr/bin/env bash
# vmcrypt's KMIP client against a server that misbehaves on purpose (a small Python
# TLS server, kmip-client-badserver.py): non-KMIP answers, a lying length, answers
# that match no request, silence, a hang-up right after the handshake, a kept-alive
# connection closed between requests (the client must reconnect once), and a refusal
# with its reason. Each case must end in the right exit code and message, never in a
# crash or a hang.
. "$(dirname "$0")/../lib.sh"

[ -n "${VMCRYPT:-}" ] || VMCRYPT=${VMCRYPT_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}/src/cli/vmcrypt
[ -x "$VMCRYPT" ] || die "vmcrypt binary not found at $VMCRYPT: build it first"
"$VMCRYPT" kms --help >/dev/null 2>&1 || die "'$VMCRYPT kms' is not available in this build"
require_python_cryptography

HERE=$(dirname "$0")
"$PY" "$HERE/kmip-client-certs.py" "$T"
TLS=(--cert "$T/client.crt" --key "$T/client.key" --ca "$T/ca.crt" --timeout 1500)

# serve MODE: start the fake server in MODE; sets PORT.
serve() {
        rm -f "$T/port"
        "$PY" "$HERE/kmip-client-badserver.py" "$T" "$T/port" "$1" >"$T/server-$1.log" 2>&1 &
        track_pid $!
        SERVER=$!
        for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
        [ -s "$T/port" ] || die "the fake server did not start: $(cat "$T/server-$1.log")"
        PORT=$(cat "$T/port")
}
# The server is stopped here, so lib.sh need not (its cleanup would report the dead pid).
stop() { kill -KILL "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; _lib_pids=(); }

note "ok: the fake server is a valid peer"
serve ok
expect_rc 0 ok vmc kms create --server "127.0.0.1:$PORT" "${TLS[@]}" --activate
assert_eq "$(cat "$T/ok.out")" "fake-1" "create via the fake server"
grep -qx 1 <<<"$(grep -c '^conn' "$T/server-ok.log")" || die "create+activate used more than one connection"
grep -q '^username' "$T/server-ok.log" && die "a credential was sent without --username"
printf 's3cret pass\nsecond line\n' >"$T/pw"
expect_rc 0 cred vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" --username alice --password-file "$T/pw" fake-1
assert_file_contains "$T/server-ok.log" '^username alice$' "username in the request header"
assert_file_contains "$T/server-ok.log" '^password s3cret pass$' "password (first line of the file) in the header"
expect_rc 2 credusage vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" --password-file "$T/pw" fake-1
stop

note "garbage: not KMIP"
serve garbage
expect_rc 9 garbage vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" fake-1
assert_file_contains "$T/garbage.err" "did not answer with a KMIP message" "garbage answer"
stop

note "huge: a length over the limit"
serve huge
expect_rc 1 huge vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" fake-1
assert_file_contains "$T/huge.err" "response larger than" "oversized answer"
stop

note "wrongid: an answer to a request never sent"
serve wrongid
expect_rc 9 wrongid vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" fake-1
assert_file_contains "$T/wrongid.err" "do not match the requests" "mismatched batch item id"
stop

note "silent: no answer within --timeout"
serve silent
start=$(date +%s)
expect_rc 7 silent vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" fake-1
assert_file_contains "$T/silent.err" "no answer within 1500 ms" "timeout message"
[ $(( $(date +%s) - start )) -lt 10 ] || die "the timeout took far longer than 1.5 s"
stop

note "hangup: closed right after the handshake"
serve hangup
expect_rc 3 hangup vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" fake-1
assert_file_contains "$T/hangup.err" "right after the TLS handshake" "hang-up explained as a trust problem"
stop

note "keepalive: the server closes the kept-alive connection; the client reconnects once"
serve keepalive
expect_rc 0 keepalive vmc kms create --server "127.0.0.1:$PORT" "${TLS[@]}" --activate
assert_eq "$(grep -c '^conn' "$T/server-keepalive.log")" 2 "connections for create + activate"
stop

note "denied: the server's reason and message reach the user"
serve denied
expect_rc 8 denied vmc kms activate --server "127.0.0.1:$PORT" "${TLS[@]}" fake-1
assert_file_contains "$T/denied.err" "Activate failed: Permission Denied: nope" "refusal message"
stop
