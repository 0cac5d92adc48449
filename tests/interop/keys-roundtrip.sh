#!/usr/bin/env bash
# KMS-bound disks end to end against vmcrypt-kms: encrypt in place with a new KEK
# (tagged like vSphere's), unlock through the KMS into cryptsetup and QEMU over a
# pipe, an offline `cryptsetup reencrypt --decrypt` with the released secret,
# shallow rekey (data untouched; the old KEK retired, and it no longer unlocks), secret
# rotation, a recovery passphrase that opens the disk with plain cryptsetup, LUKS1
# with its sidecar, and finally a scan of every file for the secrets used.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli
require_testpoints
require_cmd qemu-img

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
adm() { kmip_admin "$T/kms" alice "$KMS_PORT" "$@"; }
unlock() { vmc disk unlock --providers "$P" "$@"; }
luks_json() { cryptsetup luksDump --dump-json-metadata "$1"; }
data_offset() { luks_json "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])'; }

note "encrypt in place, new KEK tagged with the VM"
make_random_image "$T/a.img" 24M
orig=$(sha256_range "$T/a.img")
expect_rc 0 encrypt vmc disk encrypt --providers "$P" --provider kms --vm-name web-01 \
        --vm-uuid 4216a6a2-1d3c-4c1e-9f0e-0000000000a1 --progress none "$T/a.img"
kek_a=$(token_field "$T/a.img" kek_id)
[ -n "$kek_a" ] || die "no vmcrypt token after encrypt --provider"
assert_eq "$(token_field "$T/a.img" method)" kmip-encrypt "wrap method (vmcrypt-kms does Encrypt)"
assert_eq "$(token_field "$T/a.img" vm_name)" web-01 "VM name in the token"
adm attrs "$kek_a" >"$T/attrs"
for a in "State=State.ACTIVE" "x-Component=Virtual Machine" "x-Name=web-01" \
        "x-Identifier=4216a6a2-1d3c-4c1e-9f0e-0000000000a1" "x-Vendor=vmcrypt project" "x-Product=vmcrypt"; do
        grep -qxF "$a" "$T/attrs" || die "KEK attribute '$a' missing: $(cat "$T/attrs")"
done
# The KEK wraps on the KMS, so it was made unable to leave it: usage Encrypt|Decrypt
# only (4|8) and Extractable = false, which the KMS enforces against its owner too.
grep -qxF "Cryptographic Usage Mask=12" "$T/attrs" || die "KEK usage mask is not Encrypt|Decrypt: $(cat "$T/attrs")"
adm get-refused "$kek_a" || die "Get of the vmcrypt-made KEK was not refused"
# The keyslot uses PBKDF2 with minimal iterations: the secret has full entropy.
luks_json "$T/a.img" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
t = [t for t in d["tokens"].values() if t["type"] == "vmcrypt"][0]
k = d["keyslots"][t["keyslots"][0]]["kdf"]
assert k["type"] == "pbkdf2" and int(k["iterations"]) == 1000, k' || die "keyslot KDF is not minimal PBKDF2"

note "cryptsetup opens it with what the KMS releases, on a pipe"
expect_rc 0 cs-test unlock "$T/a.img" -- cryptsetup open --test-passphrase --key-file - "$T/a.img"
printf 'not-the-secret' | cs open --test-passphrase --key-file - "$T/a.img" 2>/dev/null &&
        die "cryptsetup accepted a wrong secret: the check above proves nothing"
expect_rc 0 check unlock --check "$T/a.img"
assert_file_contains "$T/check.out" "ok \(keyslot" "--check output"
# --fd and --format: the base64 of the secret arrives on fd 3, and only there.
unlock --fd 3 --format base64 "$T/a.img" -- sh -c 'cat <&3 | base64 -d | cryptsetup open --batch-mode --test-passphrase --key-file - "$0"' \
        "$T/a.img" || die "base64 on fd 3 did not open the disk"

note "shallow rekey: new KEK, data area untouched"
off=$(data_offset "$T/a.img")
data_before=$(sha256_range "$T/a.img" "$off")
old_tok=$(luks_json "$T/a.img" | "$PY" -c '
import json, sys; d = json.load(sys.stdin)
print([i for i, t in d["tokens"].items() if t["type"] == "vmcrypt"][0])')
cryptsetup token export --token-id "$old_tok" "$T/a.img" >"$T/old-token.json"
expect_rc 0 rekey vmc disk rekey --providers "$P" "$T/a.img"
kek_b=$(token_field "$T/a.img" kek_id)
assert_ne "$kek_b" "$kek_a" "KEK after rekey"
assert_file_contains "$T/rekey.err" "KEK $kek_a .*retired" "the old KEK, used by no other disk, is retired"
assert_eq "$(sha256_range "$T/a.img" "$off")" "$data_before" "data area after shallow rekey"
assert_eq "$(luks_json "$T/a.img" | "$PY" -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin)["tokens"].values() if t["type"]=="vmcrypt"))')" 1 \
        "vmcrypt tokens after rekey"
expect_rc 0 check2 unlock --check "$T/a.img"
assert_file_contains "$T/check2.out" "$kek_b" "unlock uses the new KEK"

note "the old KEK, retired by the rekey, no longer unlocks"
new_tok=$(luks_json "$T/a.img" | "$PY" -c '
import json, sys; d = json.load(sys.stdin)
print([i for i, t in d["tokens"].items() if t["type"] == "vmcrypt"][0])')
cryptsetup token export --token-id "$new_tok" "$T/a.img" >"$T/new-token.json"
cryptsetup token remove --token-id "$new_tok" "$T/a.img"
cryptsetup token import --json-file "$T/old-token.json" "$T/a.img"
snap=$(snapshot "$T/a.img")
expect_rc 4 revoked unlock --check "$T/a.img"
assert_file_contains "$T/revoked.err" "$kek_a does not exist.*destroyed" "message for a retired KEK"
assert_unchanged "$T/a.img" "$snap" "a failed unlock"
# With both tokens present (as after a crash mid-rekey), the good one still wins.
cryptsetup token import --json-file "$T/new-token.json" "$T/a.img"
expect_rc 0 both unlock --check "$T/a.img"
assert_file_contains "$T/both.out" "$kek_b" "the working token is used"
# Alone again, the retired KEK's token still says so.
cryptsetup token remove --token-id "$new_tok" "$T/a.img" 2>/dev/null ||
        cryptsetup token remove --token-id "$(luks_json "$T/a.img" | "$PY" -c '
import json, sys; d = json.load(sys.stdin)
print([i for i, t in d["tokens"].items() if t["type"] == "vmcrypt" and t["kek_id"] == sys.argv[1]][0])' "$kek_b")" "$T/a.img"
expect_rc 4 destroyed unlock --check "$T/a.img"
assert_file_contains "$T/destroyed.err" "$kek_a does not exist" "message for a destroyed KEK"
cryptsetup token remove --token-id "$(luks_json "$T/a.img" | "$PY" -c '
import json, sys; d = json.load(sys.stdin)
print([i for i, t in d["tokens"].items() if t["type"] == "vmcrypt"][0])')" "$T/a.img"
cryptsetup token import --json-file "$T/new-token.json" "$T/a.img"
expect_rc 0 check3 unlock --check "$T/a.img"

note "rotate the unlock secret: new keyslot, old keyslot gone, data untouched"
slot_before=$(token_field "$T/a.img" keyslots | tr -dc 0-9)
expect_rc 0 rekey-secret vmc disk rekey --providers "$P" --secret "$T/a.img"
kek_c=$(token_field "$T/a.img" kek_id)
assert_file_contains "$T/rekey-secret.err" "KEK $kek_b .*retired" "rekey --secret under a new KEK retires the old one"
slot_after=$(token_field "$T/a.img" keyslots | tr -dc 0-9)
assert_ne "$slot_after" "$slot_before" "keyslot after secret rotation"
luks_json "$T/a.img" | "$PY" -c 'import json,sys; sys.exit(sys.argv[1] in json.load(sys.stdin)["keyslots"])' "$slot_before" ||
        die "old keyslot $slot_before still exists after rekey --secret"
assert_eq "$(sha256_range "$T/a.img" "$off")" "$data_before" "data area after secret rotation"
expect_rc 0 cs-test2 unlock "$T/a.img" -- cryptsetup open --test-passphrase --key-file - "$T/a.img"

note "recovery passphrase: Argon2id keyslot, plain cryptsetup, no KMS"
rec=$(vmc disk recovery-key add --providers "$P" --pbkdf-memory 32768 --iter-time 100 "$T/a.img" 2>"$T/rec.err") ||
        die "recovery-key add failed: $(cat "$T/rec.err")"
[[ "$rec" =~ ^([2-9A-HJ-NP-Z]{5}-){7}[2-9A-HJ-NP-Z]{5}$ ]] || die "recovery passphrase has the wrong shape: '$rec'"
printf '%s' "$rec" | cs open --test-passphrase --key-file - "$T/a.img" || die "cryptsetup rejects the recovery passphrase"
luks_json "$T/a.img" | "$PY" -c '
import json, sys
assert any(k["kdf"]["type"] == "argon2id" for k in json.load(sys.stdin)["keyslots"].values())' ||
        die "no Argon2id keyslot for the recovery passphrase"

note "deep rekey and decrypt of a bound disk with no key file: the KMS releases the secret"
make_random_image "$T/b.img" 8M
orig_b=$(sha256_range "$T/b.img")
expect_rc 0 encrypt-b vmc disk encrypt --providers "$P" --provider kms --progress none "$T/b.img"
luks_json "$T/b.img" >"$T/b-before.json"
uuid_b=$(cryptsetup luksUUID "$T/b.img")
expect_rc 0 reencrypt-b vmc disk reencrypt --providers "$P" --progress none "$T/b.img" </dev/null
assert_eq "$(token_field "$T/b.img" method)" kmip-encrypt "token kept across the deep rekey"
# The UUID stays (as with cryptsetup reencrypt): the KEK's record of this disk is
# by UUID, so the decrypt below can still retire the KEK.
assert_eq "$(cryptsetup luksUUID "$T/b.img")" "$uuid_b" "UUID after the deep rekey"
expect_rc 0 cs-test-b unlock "$T/b.img" -- cryptsetup open --test-passphrase --key-file - "$T/b.img"
# Without the providers file the disk cannot be unlocked, and the message says why.
expect_rc 4 decrypt-noprov vmc disk decrypt --providers "$T/missing.json" --progress none "$T/b.img" </dev/null
assert_file_contains "$T/decrypt-noprov.err" "bound to a key provider" "message for a missing providers.json"
expect_rc 0 decrypt-b vmc disk decrypt --providers "$P" --progress none "$T/b.img" </dev/null
assert_file_contains "$T/decrypt-b.err" "KEK .* retired" "decrypt after a deep rekey retires the disk's KEK"
assert_eq "$(sha256_range "$T/b.img")" "$orig_b" "plaintext after decrypt through the KMS"
assert_eq "$(stat -c %s "$T/b.img")" $((8 << 20)) "size after decrypt through the KMS"

note "interrupted jobs of a bound disk resume with what the KMS releases"
make_random_image "$T/c.img" 8M
orig_c=$(sha256_range "$T/c.img")
for op in encrypt decrypt; do
        if [ "$op" = encrypt ]; then extra=(--provider kms); else extra=(); fi
        rc=0
        VMCRYPT_TEST_CRASH_POINT=after-marker vmc disk "$op" --providers "$P" "${extra[@]}" --progress none \
                "$T/c.img" </dev/null >"$T/crash-$op.out" 2>&1 || rc=$?
        assert_eq "$rc" 137 "$op killed at after-marker"
        expect_rc 0 status-$op vmc disk status --json "$T/c.img"
        assert_file_contains "$T/status-$op.out" "\"operation\":\"$op\"" "status shows the interrupted $op"
        expect_rc 0 resume-$op vmc disk resume --providers "$P" --progress none "$T/c.img" </dev/null
done
assert_eq "$(sha256_range "$T/c.img")" "$orig_c" "plaintext after both resumed jobs"
assert_eq "$(stat -c %s "$T/c.img")" $((8 << 20)) "size after both resumed jobs"

note "offline cryptsetup reencrypt --decrypt with the secret from the KMS"
expect_rc 0 cs-decrypt unlock "$T/a.img" -- cryptsetup reencrypt --decrypt --force-offline-reencrypt \
        --header "$T/dec.hdr" --batch-mode --key-file - "$T/a.img"
assert_eq "$(sha256_range "$T/a.img" 0 $((24 << 20)))" "$orig" "plaintext after cryptsetup decrypt"

note "LUKS1 for QEMU: token in the header's metadata area, QEMU opens it with the released secret"
expect_rc 0 create1 vmc disk create --providers "$P" --provider kms --type luks1 8M "$T/q.img"
[ ! -e "$T/q.img.vmcrypt.json" ] || die "a sidecar $T/q.img.vmcrypt.json for LUKS1: the binding belongs in the header"
luks1_kek() { "$KEYS_HERE/luks1-meta.py" doc "$1" | "$PY" -c 'import json,sys; print(list(json.load(sys.stdin)["tokens"].values())[0]["kek_id"])'; }
expect_rc 0 qemu unlock --fd 3 --format base64 "$T/q.img" -- qemu-img info \
        --object secret,id=s0,file=/dev/fd/3,format=base64 --image-opts driver=luks,key-secret=s0,file.filename="$T/q.img"
assert_file_contains "$T/qemu.out" "encrypted: yes" "qemu-img info through the luks driver"
kek_q=$(luks1_kek "$T/q.img")
expect_rc 0 rekey1 vmc disk rekey --providers "$P" "$T/q.img"
kek_q2=$(luks1_kek "$T/q.img")
assert_ne "$kek_q2" "$kek_q" "LUKS1 KEK after rekey"
expect_rc 0 cs-test1 unlock "$T/q.img" -- cryptsetup open --test-passphrase --key-file - "$T/q.img"
make_random_image "$T/q2.img" 4M
orig_q2=$(sha256_range "$T/q2.img")
expect_rc 0 encrypt-q2 vmc disk encrypt --providers "$P" --provider kms --type luks1 --progress none "$T/q2.img"
[ ! -e "$T/q2.img.vmcrypt.json" ] || die "a sidecar for the LUKS1 image q2.img"
expect_rc 0 decrypt-q2 vmc disk decrypt --providers "$P" --progress none "$T/q2.img" </dev/null
assert_eq "$(sha256_range "$T/q2.img")" "$orig_q2" "LUKS1 plaintext after decrypt through the KMS"

note "bind a LUKS1 volume QEMU writes: QEMU then opens it with what the KMS releases"
make_text_key "$T/qpass"
# qemu-img's own LUKS1 images put the data right after the keyslots (payload
# offset 4040 sectors): no room for vmcrypt's metadata area, so bind refuses them
# and says how to make the volume with room; nothing changes. (qemu-img create may
# fail here to time its PBKDF, "Unable to get accurate CPU usage": then this check
# is left out and said so.)
if qemu-img create --object secret,id=s0,file="$T/qpass" -f luks -o key-secret=s0,iter-time=10 \
        "$T/qemu-made.img" 8M >"$T/qemu-create.log" 2>&1; then
        snap=$(snapshot "$T/qemu-made.img")
        expect_rc 6 bind-qemu-made vmc disk bind --providers "$P" --provider kms --key-file "$T/qpass" "$T/qemu-made.img"
        assert_file_contains "$T/bind-qemu-made.err" "no room for vmcrypt's metadata area.*qemu-img" "bind of a qemu-img LUKS1 image"
        assert_unchanged "$T/qemu-made.img" "$snap" "a qemu-img LUKS1 image after a refused bind"
else
        grep -q "Unable to get accurate CPU usage" "$T/qemu-create.log" ||
                die "qemu-img could not create a LUKS image: $(cat "$T/qemu-create.log")"
        echo "   (qemu-img cannot time its PBKDF here: the refusal of its LUKS1 image is not checked)"
fi
# A LUKS1 header with room (cryptsetup's layout, QEMU's parameters), data written by
# QEMU through its luks driver: bound, then QEMU opens it with the released secret.
truncate -s $((8 << 20)) "$T/qemu.img"
cs luksFormat --type luks1 --cipher aes-xts-plain64 --key-size 512 --hash sha256 \
        --pbkdf-force-iterations 1000 --key-file "$T/qpass" "$T/qemu.img" >"$T/qemu-create.log" 2>&1 ||
        die "cryptsetup luksFormat --type luks1 failed: $(cat "$T/qemu-create.log")"
head -c $((4 << 20)) /dev/urandom >"$T/qemu-data"
qemu-img convert -n -f raw "$T/qemu-data" --object "secret,id=s0,file=$T/qpass" \
        --target-image-opts "driver=luks,key-secret=s0,file.filename=$T/qemu.img" >"$T/qemu-create.log" 2>&1 ||
        die "qemu-img could not write the LUKS1 image: $(cat "$T/qemu-create.log")"
expect_rc 0 bind-qemu vmc disk bind --providers "$P" --provider kms --vm-name q-vm --key-file "$T/qpass" "$T/qemu.img"
[ ! -e "$T/qemu.img.vmcrypt.json" ] || die "a sidecar for the bound LUKS1 image"
expect_rc 0 qemu2 unlock --fd 3 --format base64 "$T/qemu.img" -- qemu-img info \
        --object secret,id=s0,file=/dev/fd/3,format=base64 --image-opts driver=luks,key-secret=s0,file.filename="$T/qemu.img"
assert_file_contains "$T/qemu2.out" "encrypted: yes" "qemu-img info of the bound image"
printf 'not-the-secret' | cs open --test-passphrase --key-file - "$T/qemu.img" 2>/dev/null &&
        die "cryptsetup accepted a wrong secret for the QEMU image"
cs open --test-passphrase --key-file "$T/qpass" "$T/qemu.img" || die "bind broke the image's own passphrase"

note "no plaintext key in any file the test made"
{ unlock "$T/q.img" -- cat; echo; } | scan_for_plaintext "$T" "$T/kms" alice "$KMS_PORT" "$kek_c" "$kek_q2"
keys_done
