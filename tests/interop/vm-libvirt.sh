#!/usr/bin/env bash
# A whole VM through a real libvirtd and QEMU (TCG): a domain with an OS disk and a
# data disk, keys in vmcrypt-kms. Inventory and status before; refusal while QEMU
# runs; encryption of the OS disk, then a re-run that encrypts only the data disk
# under the same KEK (tagged with the domain's name and UUID); 'virsh start' alone
# cannot start it; 'vmcrypt vm start' does, with no libvirt secret left behind, and
# the guest reads the original bytes of both disks. A disk decrypted behind vm's
# back shows as NotEncrypted with the reason; a job killed mid-way shows its
# progress to another process, blocks the start, and a re-run finishes it with the
# guest again reading the original bytes. vm decrypt restores the files and the
# XML; a disk finished before a kill gets its XML on the re-run. A dead key server or a revoked KEK: no start, the message names disk, KEK
# and reason, and the domain stays off. One guest boot per phase, two in all.
# 'vmcrypt vm check' answers each of these without starting: both keys proved
# (no libvirt secret left), every disk tried on a mismatch, the key server down,
# the KEK revoked.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/vm-lib.sh"
require_vm_peers
require_keys_cli

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
dead=$(free_port)
write_providers "$T/dead.json" kms "$T/kms" alice "127.0.0.1:$dead"
cat >"$T/kms.json" <<JSON
{ "servers": ["127.0.0.1:$KMS_PORT"], "ca": "$T/kms/ca.crt",
  "cert": "$T/kms/client-alice.crt", "key": "$T/kms/client-alice.key" }
JSON

libvirtd_start
guest_kit "$T/kit"
V=(--connect "$LV_URI")
UUID=5eed0000-0000-4000-8000-00000000c0de
make_random_image "$T/os.img" 24M
make_random_image "$T/data.img" 12M
OS_SHA=$(sha256_range "$T/os.img")
DATA_SHA=$(sha256_range "$T/data.img")
domain_xml vm1 "$UUID" "$T/kit" "$T/console.log" "$T/os.img" "$T/data.img" >"$T/vm1.xml"
virsh -c "$LV_URI" define "$T/vm1.xml" >/dev/null

# vm_json NAME CMD...: run a vm command with --json into $T/NAME.json
vm_json() {
        local name=$1
        shift
        vmc vm "$1" "${V[@]}" --json "${@:2}" >"$T/$name.json" || die "vmcrypt vm $* failed"
}
assert_status() { # os data message
        vm_json status status vm1
        assert_eq "$(json_get "$T/status.json" "d['OsVolumeEncrypted']")" "$1" "OsVolumeEncrypted"
        assert_eq "$(json_get "$T/status.json" "d['DataVolumesEncrypted']")" "$2" "DataVolumesEncrypted"
        assert_file_contains "$T/status.json" "$3" "ProgressMessage"
}
domain_state() { virsh -c "$LV_URI" domstate vm1 | sed -n 1p; }
# boot_and_check: start with vmcrypt, wait for the guest's hashes, compare.
boot_and_check() {
        rm -f "$T/console.log"
        expect_rc 0 start vmc vm start "${V[@]}" --providers "$P" vm1
        assert_file_contains "$T/start.out" "vda key released to QEMU" "start output"
        assert_file_contains "$T/start.out" "vdb key released to QEMU" "start output"
        assert_eq "$(virsh -c "$LV_URI" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true)" 0 \
                "libvirt secrets left after the start (they must be undefined once QEMU runs)"
        for _ in $(seq 240); do
                grep -q GUEST-DONE "$T/console.log" 2>/dev/null && break
                sleep 0.25
        done
        grep -q GUEST-DONE "$T/console.log" 2>/dev/null ||
                die "the guest printed no result in 60 s: $(tail -c 2000 "$T/console.log" 2>/dev/null)"
        assert_file_contains "$T/console.log" "SHA vda $OS_SHA" "OS disk as the guest reads it"
        assert_file_contains "$T/console.log" "SHA vdb $DATA_SHA" "data disk as the guest reads it"
        for _ in $(seq 100); do [ "$(domain_state)" = "shut off" ] && break; sleep 0.1; done
        assert_eq "$(domain_state)" "shut off" "domain state after the guest powered off"
}

note "inventory and status before"
vm_json list list
assert_eq "$(json_get "$T/list.json" "[x['name'] for x in d]")" '["vm1"]' "domains listed"
vm_json show show vm1
assert_eq "$(json_get "$T/show.json" "d['uuid']")" "$UUID" "UUID"
assert_eq "$(json_get "$T/show.json" "[(k['target'], k['type'], k['format'], k['os'], k['state']) for k in d['disks']]")" \
        '[["vda", "file", "raw", true, "plain"], ["vdb", "file", "raw", false, "plain"]]' "disks"
assert_status NotEncrypted NotEncrypted "Not encrypted"

note "refused while QEMU runs: names the domain and QEMU's PID"
virsh -c "$LV_URI" start --paused vm1 >/dev/null
expect_rc 5 enc-running vmc vm encrypt "${V[@]}" --providers "$P" --provider kms vm1
assert_file_contains "$T/enc-running.err" "domain vm1 is paused \(QEMU PID [0-9]+\).*shut it down" "refusal"
virsh -c "$LV_URI" destroy vm1 >/dev/null
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk after the refusal"

note "encrypt the OS disk, then re-run for all: only the data disk, same KEK"
expect_rc 0 enc-os vmc vm encrypt "${V[@]}" --providers "$P" --provider kms --volume-type os vm1
assert_file_contains "$T/enc-os.out" "vm1: vda encrypted" "first run"
assert_status Encrypted NotEncrypted "Encryption succeeded for the OS volume"
expect_rc 0 enc-all vmc vm encrypt "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/enc-all.out" "vm1: vda already done" "re-run leaves the OS disk"
assert_file_contains "$T/enc-all.out" "vm1: vdb encrypted" "re-run encrypts the data disk"
assert_status Encrypted Encrypted "Encryption succeeded for all volumes"
vm_json show show vm1
KEK=$(json_get "$T/show.json" "d['disks'][0]['kek']")
assert_eq "$(json_get "$T/show.json" "d['disks'][1]['kek']")" "$KEK" "one KEK per VM"
assert_eq "$(json_get "$T/show.json" "[k['luks'] for k in d['disks']]")" '["luks1", "luks1"]' "LUKS version"
expect_rc 0 attrs vmc kms attrs --config "$T/kms.json" "$KEK" x-Name x-Identifier x-Component
assert_file_contains "$T/attrs.out" "x-Name: vm1" "KEK tagged with the domain name"
assert_file_contains "$T/attrs.out" "x-Identifier: $UUID" "KEK tagged with the domain UUID"
assert_file_contains "$T/attrs.out" "x-Component: Virtual Machine" "vSphere component attribute"
virsh -c "$LV_URI" dumpxml --inactive vm1 >"$T/dom.xml"
assert_eq "$(grep -c "<encryption format='luks'" "$T/dom.xml")" 2 "<encryption> per disk in the domain XML"
assert_eq "$(grep -c "<secret type='passphrase' uuid=" "$T/dom.xml")" 2 "secret per disk in the domain XML"

note "virsh start alone cannot start it: the secrets exist only during vmcrypt vm start"
! virsh -c "$LV_URI" start vm1 >"$T/virsh-start.out" 2>&1 || die "virsh start started an encrypted VM without its secrets"
assert_file_contains "$T/virsh-start.out" "secret" "virsh start's error"
assert_eq "$(domain_state)" "shut off" "domain state after virsh start failed"

note "vmcrypt vm check: both keys unwrapped and proved, nothing left in libvirt"
expect_rc 0 check vmc vm check "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/check.out" "^  vda +ok +$T/os.img: key from provider kms \(KEK $KEK\) opens keyslot 0$" "vm check: vda"
assert_file_contains "$T/check.out" "^  vdb +ok +$T/data.img: key from provider kms \(KEK $KEK\) opens keyslot 0$" "vm check: vdb"
assert_file_contains "$T/check.out" "^vm1: would start here" "vm check's answer"
assert_eq "$(virsh -c "$LV_URI" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true)" 0 "libvirt secrets after vm check"
assert_eq "$(domain_state)" "shut off" "domain state after vm check"

note "vmcrypt vm start: the guest reads the original bytes of both disks"
boot_and_check

note "a disk decrypted behind vmcrypt vm's back shows NotEncrypted, and why"
vmc disk unlock --providers "$P" "$T/data.img" -- sh -c 'cat >"$0"' "$T/data.key"
expect_rc 0 behind vmc disk decrypt --providers "$P" --key-file "$T/data.key" --progress none "$T/data.img"
assert_file_contains "$T/behind.err" "KEK .* stays: 1 other disk" "the VM's KEK stays for the OS disk"
rm -f "$T/data.key"
assert_status Encrypted NotEncrypted "still has <encryption>.*decrypted outside vmcrypt"
expect_rc 9 start-mismatch vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start-mismatch.err" "disk vdb .*decrypted outside vmcrypt" "start refused on the mismatch"
expect_rc 9 check-mismatch vmc vm check "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/check-mismatch.out" "^  vda +ok " "vm check tries every disk: vda"
assert_file_contains "$T/check-mismatch.out" "^  vdb +FAIL .*decrypted outside vmcrypt" "vm check tries every disk: vdb"
assert_file_contains "$T/check-mismatch.out" "^vm1: would NOT start here$" "vm check's answer on the mismatch"

note "a job killed mid-way: another process sees its progress; start waits; a re-run finishes it"
"$VMCRYPT" vm encrypt "${V[@]}" --providers "$P" --max-rate 2M --progress none vm1 >"$T/slow.out" 2>&1 &
slow=$!
track_pid "$slow"
seen=""
for _ in $(seq 100); do
        vm_json status status vm1
        if [ "$(json_get "$T/status.json" "d['DataVolumesEncrypted']")" = EncryptionInProgress ] &&
                [ "$(json_get "$T/status.json" "d['disks'][1]['percent'] > 0")" = true ]; then
                seen=1
                break
        fi
        sleep 0.1
done
[ -n "$seen" ] || die "vm status never showed the running job: $(cat "$T/status.json")"
assert_file_contains "$T/status.json" "vdb: encrypt [0-9.]+%" "ProgressMessage of a running job"
vmc vm status "${V[@]}" --rate vm1 >"$T/rate.out" || die "vm status --rate failed"
assert_file_contains "$T/rate.out" "vdb: encrypt .*MiB/s, [0-9]+ s left" "rate and time left of a running job"
kill -KILL "$slow"
wait "$slow" 2>/dev/null || true
assert_status Encrypted EncryptionInProgress "vdb: encrypt"
expect_rc 5 start-job vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start-job.err" "disk vdb .*encrypt job is in progress" "start refused during a job"
assert_eq "$(domain_state)" "shut off" "domain state after the refused start"
expect_rc 0 enc-resume vmc vm encrypt "${V[@]}" --providers "$P" --progress none vm1
assert_file_contains "$T/enc-resume.out" "vm1: vdb interrupted job finished" "re-run resumes the killed job"
assert_status Encrypted Encrypted "Encryption succeeded for all volumes"
vm_json show show vm1
assert_eq "$(json_get "$T/show.json" "d['disks'][1]['kek']")" "$KEK" "the data disk back under the VM's KEK"
boot_and_check

note "vm decrypt: data disk first, then the OS disk; files and XML as before"
expect_rc 0 dec vmc vm decrypt "${V[@]}" --providers "$P" --progress none vm1
assert_eq "$(grep -o 'vd[ab] decrypted' "$T/dec.out" | tr '\n' ' ')" "vdb decrypted vda decrypted " "decryption order"
assert_file_contains "$T/dec.out" "vdb decrypted: KEK $KEK stays \\(1 disk" "the VM's KEK stays while its OS disk uses it"
assert_file_contains "$T/dec.out" "vda decrypted: KEK $KEK retired" "the VM's KEK is retired with its last disk"
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk after vm decrypt"
assert_eq "$(sha256_range "$T/data.img")" "$DATA_SHA" "data disk after vm decrypt"
assert_eq "$(file_size "$T/os.img")" $((24 << 20)) "OS disk size after vm decrypt"
virsh -c "$LV_URI" dumpxml --inactive vm1 >"$T/dom.xml"
! grep -q "<encryption" "$T/dom.xml" || die "the domain XML still has <encryption> after vm decrypt"
assert_status NotEncrypted NotEncrypted "Not encrypted"

note "killed after a disk was done but before its XML: the re-run wires it"
# What a kill between volume_encrypt and the domain XML leaves: a LUKS1 disk whose
# domain XML has no <encryption>.
expect_rc 0 disk-only vmc disk encrypt --type luks1 --providers "$P" --provider kms --vm-name vm1 \
        --vm-uuid "$UUID" --progress none "$T/data.img"
assert_status NotEncrypted Encrypted "vdb: the disk is LUKS but the domain XML has no <encryption>"
expect_rc 9 start-unwired vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start-unwired.err" "disk vdb .*no <encryption>" "start refused on an unwired disk"
expect_rc 0 enc2 vmc vm encrypt "${V[@]}" --providers "$P" --progress none vm1
assert_file_contains "$T/enc2.out" "vm1: vdb already done, domain XML fixed" "re-run wires the finished disk"
assert_file_contains "$T/enc2.out" "vm1: vda encrypted" "re-run encrypts the OS disk"

note "key server unreachable, then KEK revoked: no start, the message says which disk, KEK and why"
vm_json show show vm1
KEK2=$(json_get "$T/show.json" "d['disks'][0]['kek']")
assert_ne "$KEK2" "$KEK" "a new KEK after a full decrypt"
assert_eq "$(json_get "$T/show.json" "d['disks'][1]['kek']")" "$KEK2" "the OS disk joined the data disk's KEK"
expect_rc 7 start-dead vmc vm start "${V[@]}" --providers "$T/dead.json" vm1
assert_file_contains "$T/start-dead.err" "vm1 not started: disk vda .*KEK $KEK2:.*(unreachable|connect)" \
        "message for an unreachable key server"
assert_eq "$(domain_state)" "shut off" "domain state with the key server down"
expect_rc 7 check-dead vmc vm check "${V[@]}" --providers "$T/dead.json" vm1
assert_file_contains "$T/check-dead.err" "vm1 would not start: disk vda .*KEK $KEK2:.*(unreachable|connect)" \
        "vm check with the key server down"
expect_rc 0 revoke vmc kms revoke --config "$T/kms.json" "$KEK2"
expect_rc 8 check-revoked vmc vm check "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/check-revoked.out" "^  vdb +FAIL .*revoked" "vm check with the KEK revoked"
expect_rc 8 start-revoked vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start-revoked.err" "vm1 not started: disk vda .*KEK $KEK2:.*revoked" \
        "message for a revoked KEK"
assert_eq "$(domain_state)" "shut off" "domain state with the KEK revoked"
assert_eq "$(virsh -c "$LV_URI" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true)" 0 "libvirt secrets after refused starts"
