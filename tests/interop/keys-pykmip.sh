#!/usr/bin/env bash
# Key providers against a third-party KMS, PyKMIP's server: the KEK-wrapped disk
# works whether the server wraps (KMIP Encrypt, AES-GCM) or vmcrypt wraps locally
# with RFC 5649 after a KMIP Get; each records its method in the token, and each
# token unlocks with cryptsetup. A second identity is refused by PyKMIP's access
# control, and a revoked KEK stops unlocking on the local-wrap path too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli

kms_pykmip_start "$T/py" alice bob
adm() { kmip_admin "$T/py" alice "$KMS_PORT" "$@"; }
for mode in auto rfc5649 kmip-encrypt; do
        write_providers "$T/$mode.json" py "$T/py" alice "127.0.0.1:$KMS_PORT" "$mode"
done

note "auto: PyKMIP does Encrypt/Decrypt with AES-GCM, so the KEK never leaves it"
make_random_image "$T/a.img" 20M
orig=$(sha256_range "$T/a.img")
expect_rc 0 enc-auto vmc disk encrypt --providers "$T/auto.json" --provider py --vm-name py-vm --progress none "$T/a.img"
assert_eq "$(token_field "$T/a.img" method)" kmip-encrypt "method chosen in auto mode"
assert_eq "$(token_field "$T/a.img" cipher)" aes-gcm "cipher recorded in the token"
# vmcrypt asks the server for the IV (a server must not take IVs from clients that
# may only Encrypt) and keeps the one it answers: PyKMIP's are 16 bytes, vmcrypt's
# own were 12.
assert_eq "$(token_field "$T/a.img" iv | base64 -d | wc -c)" 16 "IV picked by the server, kept in the token"
kek_a=$(token_field "$T/a.img" kek_id)
assert_eq "$(adm state "$kek_a")" ACTIVE "state of the new KEK"
expect_rc 0 cs-auto vmc disk unlock --providers "$T/auto.json" "$T/a.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/a.img"

note "rfc5649: Get the KEK, wrap locally; the token says so"
openssl rand -hex 16 >"$T/pass"
make_luks "$T/b.img" luks2 "$T/pass" 20M
expect_rc 0 bind-kw vmc disk bind --providers "$T/rfc5649.json" --key-file "$T/pass" "$T/b.img"
assert_eq "$(token_field "$T/b.img" method)" rfc5649 "method in rfc5649 mode"
kek_b=$(token_field "$T/b.img" kek_id)
expect_rc 0 cs-kw vmc disk unlock --providers "$T/rfc5649.json" "$T/b.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/b.img"
# The method is the token's, not the configuration's: either config unlocks either disk.
expect_rc 0 cross vmc disk unlock --providers "$T/kmip-encrypt.json" --check "$T/b.img" "$T/a.img"

note "shallow rekey from a server-wrapped to a locally wrapped token"
off=$(cryptsetup luksDump --dump-json-metadata "$T/a.img" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])')
before=$(sha256_range "$T/a.img" "$off")
expect_rc 0 rekey vmc disk rekey --providers "$T/rfc5649.json" "$T/a.img"
assert_eq "$(token_field "$T/a.img" method)" rfc5649 "method after rekey under rfc5649 config"
assert_eq "$(sha256_range "$T/a.img" "$off")" "$before" "data area after rekey"
kek_a2=$(token_field "$T/a.img" kek_id)

note "another identity of the same CA may not use alice's KEK"
write_providers "$T/bob.json" py "$T/py" bob "127.0.0.1:$KMS_PORT" rfc5649
snap=$(snapshot "$T/b.img")
rc=0
vmc disk unlock --providers "$T/bob.json" --check "$T/b.img" >"$T/bob.out" 2>"$T/bob.err" || rc=$?
[ "$rc" = 8 ] || [ "$rc" = 4 ] || die "bob's unlock: exit $rc, expected 8 (denied) or 4 (not found): $(cat "$T/bob.err")"
grep -Eq "denies this client's identity|another identity" "$T/bob.err" || die "bob's message: $(cat "$T/bob.err")"
assert_unchanged "$T/b.img" "$snap" "bob's unlock attempt"
note "bob: $(cat "$T/bob.err")"

note "no plaintext key in any file (checked while the KEKs are still active)"
# PyKMIP, a demo server, keeps its keys in the clear in its own database: that file
# is the KMS's business and is left out; every other file is scanned.
{ vmc disk unlock --providers "$T/auto.json" "$T/a.img" -- cat; echo
  vmc disk unlock --providers "$T/auto.json" "$T/b.img" -- cat; echo; } |
        scan_for_plaintext "$T" "$T/py" alice "$KMS_PORT" --exclude "$T/py/pykmip.db" "$kek_a2" "$kek_b"

note "a revoked KEK stops unlocking on the local-wrap path as well"
adm revoke "$kek_b"
snap=$(snapshot "$T/b.img")
expect_rc 8 revoked vmc disk unlock --providers "$T/rfc5649.json" --check "$T/b.img"
assert_file_contains "$T/revoked.err" "$kek_b .*revoked" "message for a revoked KEK"
assert_unchanged "$T/b.img" "$snap" "unlock with a revoked KEK"
expect_rc 0 still vmc disk unlock --providers "$T/rfc5649.json" "$T/a.img" -- cryptsetup reencrypt --decrypt \
        --force-offline-reencrypt --header "$T/dec.hdr" --batch-mode --key-file - "$T/a.img"
assert_eq "$(sha256_range "$T/a.img" 0 $((20 << 20)))" "$orig" "plaintext after cryptsetup decrypt"
keys_done
