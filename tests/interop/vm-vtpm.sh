#!/usr/bin/env bash
# A VM's vTPM through a real libvirtd, swtpm and QEMU (TCG), keys in vmcrypt-kms.
# add-vtpm is refused on a plain VM, a running one and one with a TPM of its own;
# after vm encrypt it adds an emulated TPM 2.0 whose state secret is wrapped by the
# VM's KEK. vm start hands that secret to libvirt for the start only; the guest
# (busybox, raw TPM2 commands on /dev/tpm0) sees /sys/class/tpm/tpm0 and stores a
# marker in TPM NV memory. The vTPM state files on the host do not hold the marker,
# while those of a control VM with an unencrypted TPM do (so the check can fail).
# A second boot reads the marker back from NV: the state survived, encrypted. A
# revoked KEK stops the start, naming the vTPM (disks moved to another KEK) or the
# disk. vm decrypt is refused while the vTPM exists; remove-vtpm deletes the
# device, its state and vmcrypt's record, and vm decrypt then gets past the vTPM
# (to the disks' revoked KEK).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/vm-lib.sh"
require_vm_peers
require_keys_cli
require_cmd swtpm xxd

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
cat >"$T/kms.json" <<JSON
{ "servers": ["127.0.0.1:$KMS_PORT"], "ca": "$T/kms/ca.crt",
  "cert": "$T/kms/client-alice.crt", "key": "$T/kms/client-alice.key" }
JSON

libvirtd_start
V=(--connect "$LV_URI")
VS=(virsh -c "$LV_URI")

# The marker the guest stores in NV: 16 printable bytes, new for every run.
MARK="VMC$(openssl rand -hex 8 | cut -c1-13)"
MARK_HEX=$(printf %s "$MARK" | xxd -p | tr -d '\n')
[ ${#MARK} = 16 ] || die "marker of ${#MARK} bytes"

# tpm_kit DIR: the guest kit of vm-lib.sh with an init that, when a TPM is there,
# prints "TPM0 <major version>", reads NV index 0x01500001 ("NVREAD <response>")
# and, when that fails, defines the index (owner auth, empty password, 16 bytes)
# and writes the marker into it. Raw TPM2 commands: TPM2_NV_DefineSpace (0x12A),
# TPM2_NV_Write (0x137), TPM2_NV_Read (0x14E), each with one empty password
# session (TPM_RS_PW); responses as hex.
tpm_kit() {
        local dir=$1 root=$1/initramfs s
        guest_kit "$dir"
        mkdir -p "$root/tpm"
        s='\x00\x00\x00\x09\x40\x00\x00\x09\x00\x00\x00\x00\x00' # auth area: TPM_RS_PW, empty
        printf "\x80\x02\x00\x00\x00\x2d\x00\x00\x01\x2a\x40\x00\x00\x01$s\x00\x00\x00\x0e\x01\x50\x00\x01\x00\x0b\x02\x06\x00\x06\x00\x00\x00\x10" \
                >"$root/tpm/nvdefine"
        { printf "\x80\x02\x00\x00\x00\x33\x00\x00\x01\x37\x01\x50\x00\x01\x01\x50\x00\x01$s\x00\x10"
          printf %s "$MARK"
          printf '\x00\x00'; } >"$root/tpm/nvwrite"
        printf "\x80\x02\x00\x00\x00\x23\x00\x00\x01\x4e\x01\x50\x00\x01\x01\x50\x00\x01$s\x00\x10\x00\x00" \
                >"$root/tpm/nvread"
        for f in nvdefine:45 nvwrite:51 nvread:35; do
                [ "$(file_size "$root/tpm/${f%:*}")" = "${f#*:}" ] || die "TPM command ${f%:*} is not ${f#*:} bytes"
        done
        cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# One open file for a command and its response: the kernel keeps the response
# for the file that wrote the command.
tpm() {
        exec 3<>/dev/tpm0
        cat /tpm/$1 >&3
        dd bs=4096 count=1 <&3 2>/dev/null | xxd -p | tr -d '\n'
        exec 3>&-
}
if [ -e /sys/class/tpm/tpm0 ]; then
        echo "TPM0 $(cat /sys/class/tpm/tpm0/tpm_version_major)"
        R=$(tpm nvread)
        echo "NVREAD $R"
        if [ "$(echo "$R" | cut -c13-20)" != 00000000 ]; then
                echo "NVDEFINE $(tpm nvdefine)"
                echo "NVWRITE $(tpm nvwrite)"
        fi
else
        echo "NO-TPM"
fi
echo GUEST-DONE
poweroff -f
INIT
        (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$dir/initrd.img"
}
tpm_kit "$T/kit"

# q35 with ACPI: the CRB interface is described to the guest by ACPI.
q35_domain() { # name uuid console disk...
        domain_xml "$1" "$2" "$T/kit" "$3" "${@:4}" | sed "s/machine='pc'/machine='q35'/"
}
UUID=5eed0000-0000-4000-8000-0000000071e0
make_random_image "$T/os.img" 8M
make_random_image "$T/data.img" 4M
q35_domain vm1 "$UUID" "$T/console.log" "$T/os.img" "$T/data.img" >"$T/vm1.xml"
"${VS[@]}" define "$T/vm1.xml" >/dev/null
STATE=$T/libvirt/lib/swtpm # /var/lib/libvirt/swtpm inside the daemons' mount namespace

domain_state() { "${VS[@]}" domstate "$1" | sed -n 1p; }
n_secrets() { "${VS[@]}" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true; }
# wait_guest NAME CONSOLE: the guest printed its result and its domain is off.
wait_guest() {
        for _ in $(seq 240); do
                grep -q GUEST-DONE "$2" 2>/dev/null && break
                sleep 0.25
        done
        grep -q GUEST-DONE "$2" 2>/dev/null ||
                die "guest $1 printed no result in 60 s: $(tail -c 2000 "$2" 2>/dev/null)"
        for _ in $(seq 100); do [ "$(domain_state "$1")" = "shut off" ] && break; sleep 0.1; done
        assert_eq "$(domain_state "$1")" "shut off" "state of $1 after the guest powered off"
}
OK_RC='8002[0-9a-f]{8}00000000' # a response with TPM_RC_SUCCESS

note "add-vtpm refused on a plain VM, and on a running one"
expect_rc 8 add-plain vmc vm add-vtpm "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/add-plain.err" "vm1 is not encrypted.*vmcrypt vm encrypt vm1" "refusal on a plain VM"
"${VS[@]}" start --paused vm1 >/dev/null
expect_rc 5 add-running vmc vm add-vtpm "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/add-running.err" "vm1 is paused \(QEMU PID [0-9]+\).*shut it down" "refusal while it runs"
"${VS[@]}" destroy vm1 >/dev/null
expect_rc 2 add-model vmc vm add-vtpm "${V[@]}" --model tpm3 vm1
"${VS[@]}" dumpxml --inactive vm1 >"$T/dom.xml"
! grep -q "<tpm" "$T/dom.xml" || die "a refused add-vtpm left a <tpm> in the domain XML"

note "vm encrypt, then add-vtpm: a TPM 2.0 whose secret the VM's KEK wraps"
expect_rc 0 enc vmc vm encrypt "${V[@]}" --providers "$P" --provider kms --progress none vm1
vmc vm show "${V[@]}" --json vm1 >"$T/show.json"
KEK=$(json_get "$T/show.json" "d['disks'][0]['kek']")
expect_rc 0 add vmc vm add-vtpm "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/add.out" "vm1: vTPM added \(tpm-crb, TPM 2.0\), state secret [0-9a-f-]{36} wrapped by KEK $KEK at kms" \
        "add-vtpm output"
SECRET=$(grep -oE "secret [0-9a-f-]{36}" "$T/add.out" | cut -d' ' -f2)
"${VS[@]}" dumpxml --inactive vm1 >"$T/dom.xml"
assert_file_contains "$T/dom.xml" "<tpm model='tpm-crb'>" "the <tpm> device"
assert_file_contains "$T/dom.xml" "<encryption secret='$SECRET'/>" "the TPM's state secret"
assert_file_contains "$T/dom.xml" "<vmcrypt-vtpm:vtpm xmlns:vmcrypt-vtpm=\"https://vmcrypt.dev/xmlns/vtpm/1\" secret=\"$SECRET\" provider=\"kms\" kek=\"$KEK\"" \
        "vmcrypt's record in <metadata>"
assert_eq "$(n_secrets)" 0 "libvirt secrets after add-vtpm (the value is defined only for a start)"
expect_rc 0 keks vmc provider keks --providers "$P" kms
assert_file_contains "$T/keks.out" "/var/lib/libvirt/swtpm/$UUID" "the KEK records the vTPM among its users"
vmc vm show "${V[@]}" --json vm1 >"$T/show.json"
assert_eq "$(json_get "$T/show.json" "[d['tpm'][k] for k in ('model', 'vmcrypt', 'secret', 'kek', 'note')]")" \
        "[\"tpm-crb\", true, \"$SECRET\", \"$KEK\", null]" "vm show: the vTPM and the KEK that guards it"
vmc vm show "${V[@]}" vm1 >"$T/show.out"
assert_file_contains "$T/show.out" "tpm: +tpm-crb, added by vmcrypt, state secret $SECRET" "vm show text"
expect_rc 5 add-again vmc vm add-vtpm "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/add-again.err" "vm1 has a vTPM already, added by vmcrypt .*remove-vtpm vm1" "second add-vtpm"

note "virsh start alone cannot start it; vmcrypt vm start can"
! "${VS[@]}" start vm1 >"$T/virsh-start.out" 2>&1 || die "virsh start started the VM without its secrets"
expect_rc 0 start1 vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start1.out" "vm1: vTPM state key released to swtpm" "start output"
assert_eq "$(n_secrets)" 0 "libvirt secrets left after the start"
wait_guest vm1 "$T/console.log"
assert_file_contains "$T/console.log" "TPM0 2" "the guest's /sys/class/tpm/tpm0 (TPM 2.0)"
assert_file_contains "$T/console.log" "NVDEFINE $OK_RC" "TPM2_NV_DefineSpace in the guest"
assert_file_contains "$T/console.log" "NVWRITE $OK_RC" "TPM2_NV_Write in the guest"
STATE1=$STATE/$UUID
[ -n "$(find "$STATE1" -type f -size +0 2>/dev/null)" ] || die "no vTPM state under $STATE1"
if grep -r -a -q -F "$MARK" "$STATE1"; then
        die "the vTPM state on the host holds the guest's NV marker in plaintext: $(grep -r -a -l -F "$MARK" "$STATE1")"
fi

note "control: a VM with an unencrypted TPM keeps the marker in plaintext"
make_random_image "$T/os2.img" 8M
q35_domain vm2 5eed0000-0000-4000-8000-0000000071e2 "$T/console2.log" "$T/os2.img" |
        sed "s#</devices>#<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm></devices>#" >"$T/vm2.xml"
"${VS[@]}" define "$T/vm2.xml" >/dev/null
"${VS[@]}" start vm2 >/dev/null
wait_guest vm2 "$T/console2.log"
assert_file_contains "$T/console2.log" "NVWRITE $OK_RC" "TPM2_NV_Write in the control guest"
grep -r -a -q -F "$MARK" "$STATE/5eed0000-0000-4000-8000-0000000071e2" ||
        die "the control VM's unencrypted vTPM state does not hold the marker: the check above proves nothing"
vmc vm show "${V[@]}" --json vm2 >"$T/show2.json"
assert_eq "$(json_get "$T/show2.json" "[d['tpm'][k] for k in ('vmcrypt', 'secret', 'kek')]")" "[false, null, null]" \
        "vm show: a TPM that is not vmcrypt's, unencrypted"
expect_rc 5 add-foreign vmc vm add-vtpm "${V[@]}" --providers "$P" vm2
assert_file_contains "$T/add-foreign.err" "vm2 has a TPM already that vmcrypt did not add" "add-vtpm on a foreign TPM"
expect_rc 11 rm-foreign vmc vm remove-vtpm "${V[@]}" vm2
assert_file_contains "$T/rm-foreign.err" "vm2 has a TPM that vmcrypt did not add" "remove-vtpm on a foreign TPM"

note "vm rekey: a new VM KEK wraps the disks' and the vTPM's secrets; the state stays"
expect_rc 0 vmrekey vmc vm rekey "${V[@]}" --providers "$P" vm1
vmc vm show "${V[@]}" --json vm1 >"$T/show.json"
KEKN=$(json_get "$T/show.json" "d['disks'][0]['kek']")
assert_ne "$KEKN" "$KEK" "the VM's KEK after vm rekey"
assert_eq "$(json_get "$T/show.json" "d['tpm']['kek']")" "$KEKN" "the vTPM's KEK after vm rekey"
assert_file_contains "$T/vmrekey.out" "vm1: vtpm rekeyed.*old KEK $KEK retired" \
        "the vTPM leaves the old KEK last, which retires it"
KEK=$KEKN

note "second boot (after the rekey): the guest reads the marker back from NV"
rm -f "$T/console.log"
expect_rc 0 start2 vmc vm start "${V[@]}" --providers "$P" vm1
wait_guest vm1 "$T/console.log"
assert_file_contains "$T/console.log" "NVREAD 80020000002500000000000000120010$MARK_HEX" \
        "TPM2_NV_Read of the marker in the second boot"
! grep -q NVDEFINE "$T/console.log" || die "the second boot found no NV index: the vTPM state was lost"
! grep -r -a -q -F "$MARK" "$STATE1" || die "the vTPM state holds the marker after the second boot"

note "revoked KEK: the vTPM's, then the disks'; the domain stays off"
vmc disk rekey --providers "$P" "$T/os.img" >"$T/rekey.out" || die "disk rekey failed"
vmc vm show "${V[@]}" --json vm1 >"$T/show.json"
KEK2=$(json_get "$T/show.json" "d['disks'][0]['kek']")
expect_rc 0 rekey-data vmc disk rekey --providers "$P" --kek "$KEK2" "$T/data.img"
assert_file_contains "$T/rekey-data.err" "KEK $KEK on provider \"kms\" stays: 1 other" \
        "the last disk leaving the KEK does not retire it: the vTPM uses it"
vmc vm show "${V[@]}" --json vm1 >"$T/show.json"
assert_eq "$(json_get "$T/show.json" "[k['kek'] for k in d['disks']]")" "[\"$KEK2\", \"$KEK2\"]" "disks moved to a new KEK"
assert_ne "$KEK2" "$KEK" "the disks' new KEK"
expect_rc 0 revoke vmc kms revoke --config "$T/kms.json" "$KEK"
expect_rc 8 start-revoked vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start-revoked.err" "vm1 not started: vTPM \(state secret $SECRET\), key provider kms, KEK $KEK:.*revoked" \
        "message for the vTPM's revoked KEK"
assert_file_contains "$T/start-revoked.err" "for the vTPM: its state opens only through this KEK" "advice for the vTPM"
assert_eq "$(domain_state vm1)" "shut off" "domain state with the vTPM's KEK revoked"
assert_eq "$(n_secrets)" 0 "libvirt secrets after the refused start (the disks' were made first)"
expect_rc 0 revoke2 vmc kms revoke --config "$T/kms.json" "$KEK2"
expect_rc 8 start-revoked2 vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start-revoked2.err" "vm1 not started: disk vda .*KEK $KEK2:.*revoked" \
        "message for the disks' revoked KEK"
assert_eq "$(domain_state vm1)" "shut off" "domain state with every KEK revoked"

note "vm decrypt refused while the vTPM exists; remove-vtpm deletes device, state and record"
expect_rc 5 dec-vtpm vmc vm decrypt "${V[@]}" --providers "$P" --progress none vm1
assert_file_contains "$T/dec-vtpm.err" "vm1 has a vTPM.*vmcrypt vm remove-vtpm vm1" "decrypt refusal"
"${VS[@]}" autostart vm1 >/dev/null
expect_rc 0 rm vmc vm remove-vtpm "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/rm.out" "vm1: vTPM removed \(tpm-crb\), its state deleted" "remove-vtpm output"
# The KEK is revoked already (above): its release is reported, not fatal.
assert_file_contains "$T/rm.err" "KEK $KEK on provider \"kms\" no longer wraps the vTPM's secret" "the KEK's release"
expect_rc 0 keks2 vmc provider keks --providers "$P" kms
! grep -q "/var/lib/libvirt/swtpm/$UUID" "$T/keks2.out" || die "the KEK still records the removed vTPM"
[ ! -e "$STATE1" ] || die "the vTPM state $STATE1 is still there after remove-vtpm"
"${VS[@]}" dumpxml --inactive vm1 >"$T/dom.xml"
! grep -q "<tpm\|vmcrypt-vtpm" "$T/dom.xml" || die "remove-vtpm left the TPM or its record in the domain XML"
assert_eq "$(grep -c "<encryption format='luks'" "$T/dom.xml")" 2 "the disks' <encryption> after remove-vtpm"
assert_eq "$("${VS[@]}" dominfo vm1 | awk '/^Autostart/ {print $2}')" enable "autostart kept"
vmc vm show "${V[@]}" --json vm1 >"$T/show.json"
assert_eq "$(json_get "$T/show.json" "d['tpm']")" null "vm show after remove-vtpm"
expect_rc 4 rm-again vmc vm remove-vtpm "${V[@]}" vm1
assert_file_contains "$T/rm-again.err" "vm1 has no vTPM" "second remove-vtpm"
expect_rc 8 dec-after vmc vm decrypt "${V[@]}" --providers "$P" --progress none vm1
assert_file_contains "$T/dec-after.err" "disk vdb .*revoked" "vm decrypt after remove-vtpm reaches the disks"
