#!/usr/bin/env bash
# vmcrypt's KMIP client (`vmcrypt kms ...`) against vmcrypt-kms, for what PyKMIP 0.10
# cannot check: custom x- attributes at Create, AddAttribute in a batch (as vCenter
# sends it), Modify/DeleteAttribute, Locate by custom attribute, and wrapping with
# AES key wrap with padding (RFC 5649) on the server, each in KMIP 1.1, 1.4 and 2.0
# (2.0 carries custom attributes as Attribute{Vendor Identification, ...}).
. "$(dirname "$0")/../lib.sh"

[ -n "${VMCRYPT:-}" ] || VMCRYPT=${VMCRYPT_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}/src/cli/vmcrypt
[ -n "${VMCRYPT_KMS:-}" ] || VMCRYPT_KMS=$(dirname "$VMCRYPT")/../kms/vmcrypt-kms
[ -x "$VMCRYPT" ] || die "vmcrypt binary not found at $VMCRYPT: build it first"
[ -x "$VMCRYPT_KMS" ] || die "vmcrypt-kms binary not found at $VMCRYPT_KMS: build it first"
"$VMCRYPT" kms --help >/dev/null 2>&1 || die "'$VMCRYPT kms' is not available in this build"

"$VMCRYPT_KMS" init "$T/kms" --client c1 --listen 127.0.0.1:0 >/dev/null
"$VMCRYPT_KMS" serve --config "$T/kms/kms.conf" >"$T/serve.out" 2>"$T/serve.err" &
track_pid $!
for _ in $(seq 1 200); do grep -q '^listening on ' "$T/serve.out" && break; sleep 0.05; done
ADDR=$(sed -n 's/^listening on //p' "$T/serve.out")
[ -n "$ADDR" ] || die "vmcrypt-kms did not start: $(cat "$T/serve.err")"
case "$ADDR" in *:*) ;; *) ADDR=127.0.0.1:$ADDR ;; esac
K=(--server "$ADDR" --cert "$T/kms/client-c1.crt" --key "$T/kms/client-c1.key" --ca "$T/kms/ca.crt")
head -c 32 /dev/urandom >"$T/secret"

for v in 1.1 1.4 2.0; do
        note "KMIP $v: custom attributes"
        expect_rc 0 c$v vmc kms create "${K[@]}" --kmip-version $v --name "k$v" \
                --attr x-Vendor=vmcrypt --attr "x-Component=Virtual Machine"
        U=$(cat "$T/c$v.out")
        expect_rc 0 add$v vmc kms attrs "${K[@]}" --kmip-version $v --add x-Name=vm1 --add x-Identifier=42 \
                "$U" x-Vendor x-Component x-Name x-Identifier
        assert_eq "$(cat "$T/add$v.out")" "$(printf 'x-Vendor: vmcrypt\nx-Component: Virtual Machine\nx-Name: vm1\nx-Identifier: 42')" \
                "custom attributes after create + add (KMIP $v)"
        expect_rc 0 mod$v vmc kms attrs "${K[@]}" --kmip-version $v --modify x-Name=vm2 --delete x-Component \
                "$U" x-Name x-Component
        assert_eq "$(cat "$T/mod$v.out")" "x-Name: vm2" "modify and delete (KMIP $v)"
        expect_rc 0 loc$v vmc kms locate "${K[@]}" --kmip-version $v --attr x-Vendor=vmcrypt --name "k$v"
        assert_eq "$(cat "$T/loc$v.out")" "$U" "locate by custom attribute (KMIP $v)"

        note "KMIP $v: wrap with RFC 5649 and GCM on the server"
        expect_rc 0 act$v vmc kms activate "${K[@]}" --kmip-version $v "$U"
        for mode in aes-key-wrap-padding gcm; do
                expect_rc 0 w$v$mode vmc kms wrap "${K[@]}" --kmip-version $v --mode $mode --in "$T/secret" "$U"
                cp "$T/w$v$mode.out" "$T/blob"
                expect_rc 0 u$v$mode vmc kms unwrap "${K[@]}" --kmip-version $v --in "$T/blob" "$U"
                cmp -s "$T/u$v$mode.out" "$T/secret" || die "unwrap ($mode, KMIP $v) did not give the secret back"
        done
        # An altered RFC 5649 blob fails the integrity check on the server.
        "$PY" -c 'import sys; d=bytearray(open(sys.argv[1],"rb").read()); d[-1]^=1; open(sys.argv[2],"wb").write(d)' \
                "$T/w${v}aes-key-wrap-padding.out" "$T/bad"
        expect_rc 9 bad$v vmc kms unwrap "${K[@]}" --kmip-version $v --in "$T/bad" "$U"
        assert_file_contains "$T/bad$v.err" "Cryptographic Failure" "tampered blob (KMIP $v)"

        note "KMIP $v: revoke and destroy"
        expect_rc 0 rev$v vmc kms revoke "${K[@]}" --kmip-version $v "$U"
        expect_rc 0 des$v vmc kms destroy "${K[@]}" --kmip-version $v "$U"
        rc=0; vmc kms get "${K[@]}" --kmip-version $v "$U" >/dev/null 2>"$T/gone.err" || rc=$?
        [ $rc -ne 0 ] || die "get of a destroyed key succeeded (KMIP $v)"
        assert_file_contains "$T/gone.err" "destroyed" "destroyed key (KMIP $v)"
done
