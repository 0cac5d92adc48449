#!/usr/bin/env bash
# A VM whose disks are bound to a trusted key provider, through a real libvirtd and
# QEMU (TCG), with an swtpm as the host's TPM: the host enrols and is approved,
# 'vmcrypt vm encrypt' binds both disks to one KEK that requires attestation, and
# 'vmcrypt vm start' starts the VM with no option of its own: each disk's key is
# released after a quote, and the guest reads the original bytes. Then the host's
# PCR 16 changes: 'vm start' is refused with the KMS's reason and the domain stays
# off; with the PCR back, it starts again. One guest boot per start, two in all.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/vm-lib.sh"
require_vm_peers
require_keys_cli
. "$(dirname "$0")/attest-lib.sh"

attest_kms_start
tpm_start a
P=$T/providers.json
mkdir -m 700 "$T/bk"
providers "$P" host-a a 0,7,16 "$T/bk"
enroll enroll "$P"
kadm policy capture --host "$HOST_ID" --pcrs 0,7,16 --group lab >/dev/null || die "policy capture failed"
kadm host approve "$HOST_ID" --group lab >/dev/null || die "approve failed"

libvirtd_start
guest_kit "$T/kit"
V=(--connect "$LV_URI")
make_random_image "$T/os.img" 24M
make_random_image "$T/data.img" 12M
OS_SHA=$(sha256_range "$T/os.img")
DATA_SHA=$(sha256_range "$T/data.img")
domain_xml vm1 5eed0000-0000-4000-8000-0000000a77e5 "$T/kit" "$T/console.log" "$T/os.img" "$T/data.img" >"$T/vm1.xml"
virsh -c "$LV_URI" define "$T/vm1.xml" >/dev/null
domain_state() { virsh -c "$LV_URI" domstate vm1 | sed -n 1p; }

note "vm encrypt with the trusted provider: one KEK that requires attestation"
expect_rc 0 enc vmc vm encrypt "${V[@]}" --providers "$P" --provider tkp --progress none vm1
vmc vm show "${V[@]}" --json vm1 >"$T/show.json" || die "vm show failed"
KEK=$(json_get "$T/show.json" "d['disks'][0]['kek']")
assert_eq "$(json_get "$T/show.json" "d['disks'][1]['kek']")" "$KEK" "one KEK per VM"
grep -q '"reason":20,' <<<"$(grep "\"object\":\"$KEK\"" "$AUDIT" | grep '"operation":"Decrypt"')" ||
        die "binding the disks did not go through Attestation Required"

note "vm start: both keys released after a quote; the guest reads the original bytes"
expect_rc 0 start vmc vm start "${V[@]}" --providers "$P" vm1
assert_file_contains "$T/start.out" "vda key released to QEMU" "start output"
assert_file_contains "$T/start.out" "vdb key released to QEMU" "start output"
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

note "the host's PCR 16 changed: vm start refused with the reason, the domain stays off"
tpm2 a tpm2_pcrextend "16:sha256=$(printf other-image | sha256sum | cut -d' ' -f1)"
expect_rc 8 start-altered vmc vm start "${V[@]}" --providers "$P" vm1
grep -q "PCR 16 differs from the golden value" "$T/start-altered.err" ||
        die "vm start does not say why: $(cat "$T/start-altered.err")"
assert_eq "$(domain_state)" "shut off" "domain state after the refused start"
assert_eq "$(virsh -c "$LV_URI" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true)" 0 "libvirt secrets left"

note "PCR 16 reset: the VM starts again"
tpm2 a tpm2_pcrreset 16
rm -f "$T/console.log"
expect_rc 0 start-again vmc vm start "${V[@]}" --providers "$P" vm1
for _ in $(seq 240); do
        grep -q GUEST-DONE "$T/console.log" 2>/dev/null && break
        sleep 0.25
done
assert_file_contains "$T/console.log" "SHA vda $OS_SHA" "OS disk after the second start"
note "ok"
