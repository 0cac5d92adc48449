#!/usr/bin/env bash
# The trusted key provider end to end, with swtpm as the hosts' TPMs: enrolment,
# approval and a PCR policy captured from a reference host; a disk bound to a
# trusted provider unlocks on its enrolled host (KMIP Decrypt answered Attestation
# Required, then released wrapped to a TPM key after a quote); and every way the
# KMS must refuse, each with its reason to the client and a line in the audit log:
# not approved, wrong nonce, replayed nonce, expired nonce, altered PCR, PCR
# selection swapped, AK not enrolled (a second swtpm), quote from another enrolled
# host, TPM state rolled back (reset count), release key certified by another AK,
# release key usable with its password, revoked host, a released secret carried to
# another TPM; and clients that cannot attest (PyKMIP) still use keys that do not
# require it, but not those that do. The operator's approvals, revocations and
# policies are audited in a chained log of their own.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli
require_testpoints

. "$(dirname "$0")/attest-lib.sh"
attest_kms_start

# refused NAME PROVIDERS IMG REGEX [ENV=VAL]: unlock must fail with "access denied"
# (8), the client must see REGEX, and the audit log must hold it as well.
refused() {
        local name=$1 p=$2 img=$3 re=$4
        shift 4
        expect_rc 8 "$name" env "$@" "$VMCRYPT" disk unlock --providers "$p" "$img" -- \
                cryptsetup open --test-passphrase --key-file - "$img"
        grep -qE "$re" "$T/$name.err" || die "$name: the client was not told '$re': $(cat "$T/$name.err")"
        grep -qE "$re" <<<"$(grep '"operation":"Decrypt"' "$AUDIT" | grep '"reason":')" ||
                die "$name: no audit line says '$re'"
}
unlocks() { # providers img
        vmc disk unlock --providers "$1" "$2" -- cryptsetup open --test-passphrase --key-file - "$2" ||
                die "the disk $2 did not unlock with $1"
}

tpm_start a
tpm_start b
mkdir -m 700 "$T/bk-a"
providers "$T/pa.json" host-a a 0,7,16 "$T/bk-a"
providers "$T/pb.json" host-b b

note "enrolment: host A's TPM, pending until approved"
expect_rc 0 enroll-a vmc host enroll --providers "$T/pa.json"
HA=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/enroll-a.out")
[ -n "$HA" ] || die "no host id from enroll: $(cat "$T/enroll-a.out")"
assert_file_contains "$T/enroll-a.out" "pending" "state after enrolment"
ekfp=$(sed -n 's/^EK sha256:\(.\{16\}\).*/\1/p' "$T/enroll-a.out")
kadm host list >"$T/hosts" || die "host list failed"
grep -q "host-a.*pending.*$ekfp" <<<"$(grep "$HA" "$T/hosts")" || die "host list does not show A pending: $(cat "$T/hosts")"

note "policy captured from host A, A approved in group lab"
kadm policy capture --host "$HA" --pcrs 0,7,16 --group lab >"$T/policy" || die "policy capture failed"
HA0=$HA
grep -q "PCR 16" "$T/policy" || die "captured policy lacks PCR 16: $(cat "$T/policy")"
kadm host approve "$HA" --group lab >/dev/null || die "approve failed"
grep -q "lab .*approved" <<<"$(kadm host list | grep "$HA")" || die "host A is not approved in lab"

note "good path: a disk bound to the trusted provider unlocks on host A"
make_random_image "$T/a.img" 8M
expect_rc 0 encrypt-a vmc disk encrypt --providers "$T/pa.json" --provider tkp --progress none "$T/a.img"
kek_a=$(token_field "$T/a.img" kek_id)
[ -n "$kek_a" ] || die "no vmcrypt token after encrypt"
assert_eq "$(token_field "$T/a.img" method)" kmip-encrypt "wrap method of a trusted provider"
unlocks "$T/pa.json" "$T/a.img"
# The release key was kept for the next process, and the next one uses it.
[ "$(ls "$T/bk-a" | grep -c '^bk-')" = 1 ] || die "no release key kept in bk_cache: $(ls -la "$T/bk-a")"
unlocks "$T/pa.json" "$T/a.img"
[ "$(ls "$T/bk-a" | grep -c '^bk-')" = 1 ] || die "a second release key was made under the same PCRs"
printf 'not-the-secret' | cryptsetup open --test-passphrase --key-file - "$T/a.img" 2>/dev/null &&
        die "cryptsetup accepted a wrong secret: the unlock check proves nothing"
# Attestation Required is Result Reason 0x14.
grep -q '"reason":20,' <<<"$(grep '"operation":"Decrypt"' "$AUDIT")" || die "no audit line for the Attestation Required round"
grep -q "$HA" <<<"$(grep '"operation":"x-vmcrypt Enroll Host"' "$AUDIT")" || die "no audit line for the enrolment"

note "refused: evidence over another nonce, a replayed credential, an expired nonce"
refused wrong-nonce "$T/pa.json" "$T/a.img" "not over this request's nonce" VMCRYPT_TEST_ATTEST=wrong-nonce
refused replay "$T/pa.json" "$T/a.img" "unknown or already used nonce" VMCRYPT_TEST_ATTEST=replay
refused expired "$T/pa.json" "$T/a.img" "nonce expired" VMCRYPT_TEST_ATTEST=delay:4

note "refused: release key certified by another AK, or usable with its password"
refused other-ak "$T/pa.json" "$T/a.img" "release key: the certification is not signed by the AK enrolled" \
        VMCRYPT_TEST_ATTEST=certify-other-ak
refused bk-password "$T/pa.json" "$T/a.img" "userWithAuth" VMCRYPT_TEST_ATTEST=bk-userwithauth

note "refused: an altered PCR; a swapped PCR selection"
tpm2 a tpm2_pcrextend "16:sha256=$(printf evil | sha256sum | cut -d' ' -f1)"
refused altered-pcr "$T/pa.json" "$T/a.img" "PCR 16 differs from the golden value"
tpm2 a tpm2_pcrreset 16
unlocks "$T/pa.json" "$T/a.img"
providers "$T/pa-pcrs.json" host-a a 0,7
refused swapped-pcrs "$T/pa-pcrs.json" "$T/a.img" "covers PCRs 0,7 .* requires 0,7,16"

note "refused: a TPM that was never enrolled (a second swtpm) behind host A's certificate"
providers "$T/pa-tpmb.json" host-a b
refused ak-not-enrolled "$T/pa-tpmb.json" "$T/a.img" "quote is not signed by the AK enrolled for this host"

note "host B: enrolled and approved; a quote from A's TPM under B's identity is refused; then revoked"
expect_rc 0 enroll-b vmc host enroll --providers "$T/pb.json"
HB=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/enroll-b.out")
kadm host approve "$HB" --group lab >/dev/null || die "approve B failed"
make_random_image "$T/b.img" 8M
expect_rc 0 encrypt-b vmc disk encrypt --providers "$T/pb.json" --provider tkp --progress none "$T/b.img"
unlocks "$T/pb.json" "$T/b.img"
providers "$T/pb-tpma.json" host-b a
refused other-host "$T/pb-tpma.json" "$T/b.img" "quote is not signed by the AK enrolled for this host"
kadm host revoke "$HB" >/dev/null || die "revoke failed"
refused revoked "$T/pb.json" "$T/b.img" "host $HB is revoked"

note "what the KMS releases to host A's TPM is useless in another TPM"
expect_rc 1 elsewhere env VMCRYPT_TEST_ATTEST="unwrap-elsewhere:$(tcti b)" "$VMCRYPT" disk unlock \
        --providers "$T/pa.json" "$T/a.img" -- cryptsetup open --test-passphrase --key-file - "$T/a.img"
grep -q "cannot be unwrapped here" "$T/elsewhere.err" || die "carried response: $(cat "$T/elsewhere.err")"
unlocks "$T/pa.json" "$T/a.img"

note "the requirement sticks: its owner cannot delete it, Get is refused"
expect_rc 3 del-attr vmc kms attrs --providers "$T/pa.json" --provider tkp --delete x-vmcrypt-Require-Attestation "$kek_a"
grep -q "cannot be changed or removed" "$T/del-attr.err" || die "attribute delete: $(cat "$T/del-attr.err")"

note "PyKMIP (cannot attest): keys without the requirement work, the KEK is refused"
"$PY" "$(dirname "$0")/kms-attest.py" "$K" host-a "$KMS_PORT" "$kek_a" || die "PyKMIP client check failed"

note "a new enrolment of host A needs a new approval"
expect_rc 0 reenroll-a vmc host enroll --providers "$T/pa.json"
HA=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/reenroll-a.out")
refused not-approved "$T/pa.json" "$T/a.img" "not approved"
kadm host approve "$HA" --group lab >/dev/null || die "approve failed"
unlocks "$T/pa.json" "$T/a.img"

note "TPM restarted: accepted with a fresh quote; its state rolled back: refused"
tpm_stop a
cp -a "$T/tpm-a" "$T/tpm-a.saved"
tpm_start a
unlocks "$T/pa.json" "$T/a.img"
tpm_stop a
tpm_start a
unlocks "$T/pa.json" "$T/a.img"
tpm_stop a
rm -rf "$T/tpm-a"
mv "$T/tpm-a.saved" "$T/tpm-a"
tpm_start a
refused rolled-back "$T/pa.json" "$T/a.img" "went back in time"

note "EK certificates: recorded when a TPM has one; required and checked with attestation-ek-ca"
# TPM c is "manufactured" with an EK certificate from a CA of the test's own.
mkdir -p "$T/ekca" "$T/tpm-c"
printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
        "$T/ekca" "$T/ekca" "$T/ekca" "$T/ekca" >"$T/ekca.conf"
printf 'create_certs_tool = %s\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = /etc/swtpm-localca.options\n' \
        "$(command -v swtpm_localca)" "$T/ekca.conf" >"$T/swtpm_setup.conf"
swtpm_setup --tpm2 --tpmstate "$T/tpm-c" --create-ek-cert --config "$T/swtpm_setup.conf" --overwrite >"$T/setup-c" 2>&1 ||
        die "swtpm_setup could not make TPM c: $(tail -3 "$T/setup-c")"
tpm_start c
grep -q " none " <<<"$(kadm host list | grep "$HA")" || die "host A's TPM has no EK certificate, but host list says otherwise"
providers "$T/pb-tpmc.json" host-b c
expect_rc 0 enroll-c vmc host enroll --providers "$T/pb-tpmc.json"
assert_file_contains "$T/enroll-c.out" "certificate from the TPM was sent" "enrol with an EK certificate"
HC=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/enroll-c.out")
grep -q " present " <<<"$(kadm host list | grep "$HC")" || die "TPM c's EK certificate is not recorded as present"
kill -TERM "$KMS_PID" && wait "$KMS_PID" || die "vmcrypt-kms did not stop cleanly"
cat "$T/ekca/swtpm-localca-rootca-cert.pem" "$T/ekca/issuercert.pem" >"$K/ek-ca.pem"
echo "attestation-ek-ca = ek-ca.pem" >>"$K/kms.conf"
: >"$K/serve.out"
"$VMCRYPT_KMS" serve --config "$K/kms.conf" --listen "127.0.0.1:$KMS_PORT" >"$K/serve.out" 2>"$K/serve.err" &
KMS_PID=$!
track_pid "$KMS_PID"
wait_port "$KMS_PORT" 10 || die "vmcrypt-kms did not restart: $(cat "$K/serve.err")"
expect_rc 8 enroll-nocert vmc host enroll --providers "$T/pb.json"
grep -q "this TPM has none" "$T/enroll-nocert.err" || die "enrolment without EK certificate: $(cat "$T/enroll-nocert.err")"
expect_rc 0 enroll-c2 vmc host enroll --providers "$T/pb-tpmc.json"
HC=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/enroll-c2.out")
grep -q " verified " <<<"$(kadm host list | grep "$HC")" || die "TPM c's EK certificate is not verified against the EK CA"

note "the operator's changes are in the operator's audit log, chained as the server's"
OPLOG=$K/operator-audit.log
expect_rc 1 approve-none "$VMCRYPT_KMS" host approve no-such-host --config "$K/kms.conf"
user=$(id -un)
for want in "host approve\",\"result\":\"pending\",\"object\":\"$HA\",\"message\":\"group lab" \
            "host approve\",\"result\":\"success\",\"object\":\"$HA\"" \
            "host revoke\",\"result\":\"success\",\"object\":\"$HB\"" \
            "policy capture\",\"result\":\"success\",\"object\":\"lab\",\"message\":\"sha256 PCRs 0,7,16 from host $HA0" \
            "host approve\",\"result\":\"failed\",\"object\":\"no-such-host\",\"message\":\"no such host"; do
        grep -qF "\"client\":\"local:$user\",\"client_sha256\":\"\",\"peer\":\"local\",\"operation\":\"$want" "$OPLOG" ||
                die "no audit line with: $want; the operator's lines: $(cat "$OPLOG")"
done
# Both chains hold: the operator's commands, run while the server wrote its
# own lines, left the server's log to the server.
expect_rc 0 audit-verify "$VMCRYPT_KMS" audit-verify --config "$K/kms.conf"
expect_rc 0 audit-verify-op "$VMCRYPT_KMS" audit-verify --config "$K/kms.conf" "$OPLOG"
assert_file_contains "$T/audit-verify-op.out" ": 1[0-9] lines, chain intact$" "the operator's log"
[ "$(grep -c local: "$AUDIT")" = 0 ] || die "the operator's lines went to the server's log"

note "ok"
