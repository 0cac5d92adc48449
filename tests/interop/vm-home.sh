#!/usr/bin/env bash
# The VM home beyond the disks: a UEFI guest's NVRAM (OVMF's variable store)
# through a real libvirtd and QEMU (TCG), keys in vmcrypt-kms. vm encrypt before
# the first start finds no NVRAM file yet and says so; after a start (libvirt copies
# the template, OVMF writes its boot variables) vm encrypt encrypts the NVRAM in
# place (LUKS1) under the VM's KEK and points <nvram> at a libvirt secret. The
# host's NVRAM file then holds no variable name in plaintext; vm start hands its
# secret to libvirt for the start only, and OVMF boots the guest with it. vm decrypt
# does the disks, then the NVRAM: plain again, the same size, and with the
# variables OVMF wrote while it was encrypted. add-vtpm waits for the NVRAM to be
# encrypted, and a UEFI guest boots with both.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/vm-lib.sh"
require_vm_peers
require_keys_cli
CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -r "$CODE" ] && [ -r "$VARS" ] || die "no OVMF firmware in /usr/share/OVMF: run scripts/deps.sh (ovmf)"

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
libvirtd_start
guest_kit "$T/kit"
V=(--connect "$LV_URI")
VS=(virsh -c "$LV_URI")
UUID=5eed0000-0000-4000-8000-00000000ef11
NV=$T/uefi1_VARS.fd
make_random_image "$T/os.img" 8M
OS_SHA=$(sha256_range "$T/os.img")
domain_xml uefi1 "$UUID" "$T/kit" "$T/console.log" "$T/os.img" |
        sed "s/machine='pc'/machine='q35'/; s#<kernel>#<loader readonly='yes' type='pflash'>$CODE</loader><nvram template='$VARS'>$NV</nvram><kernel>#" \
        >"$T/uefi1.xml"
"${VS[@]}" define "$T/uefi1.xml" >/dev/null

domain_state() { "${VS[@]}" domstate uefi1 | sed -n 1p; }
n_secrets() { "${VS[@]}" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true; }
boot() { # NAME: vmcrypt vm start, the guest's result, the domain off again
        rm -f "$T/console.log"
        expect_rc 0 "$1" vmc vm start "${V[@]}" --providers "$P" uefi1
        assert_eq "$(n_secrets)" 0 "libvirt secrets left after the start"
        for _ in $(seq 360); do
                grep -q GUEST-DONE "$T/console.log" 2>/dev/null && break
                sleep 0.25
        done
        grep -q GUEST-DONE "$T/console.log" 2>/dev/null ||
                die "the UEFI guest printed no result in 90 s: $(tail -c 2000 "$T/console.log" 2>/dev/null)"
        assert_file_contains "$T/console.log" "SHA vda $OS_SHA" "the OS disk as the guest reads it"
        for _ in $(seq 100); do [ "$(domain_state)" = "shut off" ] && break; sleep 0.1; done
        assert_eq "$(domain_state)" "shut off" "domain state after the guest powered off"
}
# UTF-16LE "BootOrder": a UEFI variable name OVMF writes into the store at boot.
has_bootorder() { grep -a -q -P 'B\x00o\x00o\x00t\x00O\x00r\x00d\x00e\x00r' "$1"; }

note "before the first start there is no NVRAM file: vm encrypt says so"
expect_rc 0 enc1 vmc vm encrypt "${V[@]}" --providers "$P" --provider kms --progress none uefi1
assert_file_contains "$T/enc1.out" "uefi1: vda encrypted" "the disk"
assert_file_contains "$T/enc1.out" "uefi1: nvram left alone: not made yet" "the NVRAM not made yet"
[ ! -e "$NV" ] || die "vm encrypt made an NVRAM file"

note "first start: libvirt copies the template and OVMF writes its variables"
boot start1
[ -s "$NV" ] || die "libvirt made no NVRAM file at $NV"
has_bootorder "$NV" || die "OVMF wrote no BootOrder into the plain NVRAM: the plaintext check below proves nothing"
NV_SIZE=$(file_size "$NV")
expect_rc 8 add-vtpm vmc vm add-vtpm "${V[@]}" --providers "$P" uefi1
assert_file_contains "$T/add-vtpm.err" "NVRAM $NV \(part of the VM home\) is not encrypted" \
        "add-vtpm refused while the NVRAM is plain"

note "vm encrypt again: the NVRAM under the VM's KEK, <nvram> wired to a secret"
expect_rc 0 enc2 vmc vm encrypt "${V[@]}" --providers "$P" --progress none uefi1
assert_file_contains "$T/enc2.out" "uefi1: vda already done" "the disk is left"
assert_file_contains "$T/enc2.out" "uefi1: nvram encrypted" "the NVRAM"
cryptsetup isLuks --type luks1 "$NV" || die "the NVRAM is not LUKS1 after vm encrypt"
! has_bootorder "$NV" || die "the encrypted NVRAM file holds UEFI variable names in plaintext"
vmc vm show "${V[@]}" --json uefi1 >"$T/show.json"
KEK=$(json_get "$T/show.json" "d['disks'][0]['kek']")
assert_eq "$(json_get "$T/show.json" "[d['nvram'][k] for k in ('path', 'state', 'luks', 'kek', 'xml_encryption')]")" \
        "[\"$NV\", \"encrypted\", \"luks1\", \"$KEK\", true]" "vm show: the NVRAM under the VM's KEK"
"${VS[@]}" dumpxml --inactive uefi1 >"$T/dom.xml"
assert_file_contains "$T/dom.xml" "<nvram template='$VARS' type='file'>" "<nvram> as a file source"
assert_file_contains "$T/dom.xml" "<encryption format='luks' engine='qemu'>" "the NVRAM's <encryption>"
assert_eq "$(grep -c "<secret type='passphrase'" "$T/dom.xml")" 2 "a secret for the disk and one for the NVRAM"

expect_rc 0 add-vtpm2 vmc vm add-vtpm "${V[@]}" --providers "$P" uefi1
note "vm rekey: the disk, the NVRAM and the vTPM under a new VM KEK"
expect_rc 0 rekey vmc vm rekey "${V[@]}" --providers "$P" uefi1
assert_file_contains "$T/rekey.out" "uefi1: nvram rekeyed" "the NVRAM is re-wrapped with the disk"
assert_file_contains "$T/rekey.out" "uefi1: vtpm rekeyed.*old KEK $KEK retired" "the vTPM, and the old KEK retired"
vmc vm show "${V[@]}" --json uefi1 >"$T/show.json"
KEK2=$(json_get "$T/show.json" "d['disks'][0]['kek']")
assert_ne "$KEK2" "$KEK" "the VM's KEK after vm rekey"
assert_eq "$(json_get "$T/show.json" "[d['nvram']['kek'], d['tpm']['kek']]")" "[\"$KEK2\", \"$KEK2\"]" \
        "the NVRAM and the vTPM under the new KEK"
KEK=$KEK2
note "vm check: the NVRAM's and the vTPM's keys are there"
expect_rc 0 check-home vmc vm check "${V[@]}" --providers "$P" uefi1
assert_file_contains "$T/check-home.out" "^  nvram +ok +$NV: key from provider kms \(KEK $KEK\) opens keyslot 0$" "vm check: nvram"
assert_file_contains "$T/check-home.out" "^  vtpm +ok +its state key unwrapped$" "vm check: vtpm"

note "vm start: OVMF boots from the encrypted NVRAM"
boot start2
assert_file_contains "$T/start2.out" "uefi1: nvram key released to QEMU" "start output"
assert_file_contains "$T/start2.out" "uefi1: vTPM state key released to swtpm" "start output"
cryptsetup isLuks "$NV" || die "the NVRAM is not LUKS after a boot"
! has_bootorder "$NV" || die "the NVRAM holds UEFI variable names in plaintext after a boot"

note "a plain NVRAM under <encryption> (what --reset-nvram leaves): no start"
cp "$NV" "$T/nv.saved"
cp "$VARS" "$NV"
expect_rc 9 start-plain vmc vm start "${V[@]}" --providers "$P" uefi1
assert_file_contains "$T/start-plain.err" "NVRAM $NV is plain but the domain XML has <encryption>" "refusal"
expect_rc 9 check-plain vmc vm check "${V[@]}" --providers "$P" uefi1
assert_file_contains "$T/check-plain.out" "^  nvram +FAIL +domain uefi1 not started: NVRAM $NV is plain" "vm check: the plain NVRAM"
assert_eq "$(domain_state)" "shut off" "domain state after the refusal"
cp "$T/nv.saved" "$NV"

note "vm decrypt: the disk, then the NVRAM, which keeps what OVMF wrote"
expect_rc 0 rm-vtpm vmc vm remove-vtpm "${V[@]}" --providers "$P" uefi1
assert_file_contains "$T/rm-vtpm.out" "uefi1: KEK $KEK stays: 2 disk\(s\) still use it" "the KEK after remove-vtpm"
expect_rc 0 dec vmc vm decrypt "${V[@]}" --providers "$P" --progress none uefi1
assert_eq "$(grep -o 'vda decrypted\|nvram decrypted' "$T/dec.out" | tr '\n' ' ')" "vda decrypted nvram decrypted " \
        "decryption order"
assert_file_contains "$T/dec.out" "uefi1: nvram decrypted: KEK $KEK retired" "the NVRAM was the KEK's last user"
! cryptsetup isLuks "$NV" || die "the NVRAM is still LUKS after vm decrypt"
assert_eq "$(file_size "$NV")" "$NV_SIZE" "NVRAM size after vm decrypt"
has_bootorder "$NV" || die "the decrypted NVRAM lost OVMF's variables"
"${VS[@]}" dumpxml --inactive uefi1 >"$T/dom.xml"
! grep -q "<encryption" "$T/dom.xml" || die "the domain XML still has <encryption> after vm decrypt"
