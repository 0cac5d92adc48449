#!/usr/bin/env bash
# A VM's life after vm encrypt, through a real libvirtd and QEMU (TCG) and
# vmcrypt-kms: an OS disk and two data disks encrypted; a third disk attached with
# --encrypt to the running VM (hot-plug: its secret exists only during the attach)
# and read by the guest; a plain disk attached while off and converted alone by a
# re-run of vm encrypt; auto-encrypt (vm set) encrypting the next attach (killed
# inside its encryption, then run again);
# attach-disk refusals (attached already, not raw, bound to another KEK, VM not
# encrypted, target taken) that change nothing; vm rekey (new KEK on every disk,
# the old one on none, the guest reads every disk); vm rekey --deep (new volume
# keys, data intact); vm decrypt (data disks first, the OS disk last, every byte as
# before). Two guest boots.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/vm-lib.sh"
require_vm_peers
require_keys_cli

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
cat >"$T/kms.json" <<JSON
{ "servers": ["127.0.0.1:$KMS_PORT"], "ca": "$T/kms/ca.crt",
  "cert": "$T/kms/client-alice.crt", "key": "$T/kms/client-alice.key" }
JSON
libvirtd_start
guest_kit "$T/kit"
V=(--connect "$LV_URI" --providers "$P")
virsh_() { virsh -c "$LV_URI" "$@"; }
UUID=5eed0000-0000-4000-8000-00000000a77a
declare -A SHA
make_random_image "$T/os.img" 16M
for d in d1 d2 d3 d4 d5; do make_random_image "$T/$d.img" 4M; done
for f in os d1 d2 d3 d4 d5; do SHA[$f]=$(sha256_range "$T/$f.img"); done
domain_xml vm1 "$UUID" "$T/kit" "$T/console.log" "$T/os.img" "$T/d1.img" "$T/d2.img" >"$T/vm1.xml"
virsh_ define "$T/vm1.xml" >/dev/null
domain_state() { virsh_ domstate vm1 | sed -n 1p; }
secrets_left() { virsh_ secret-list | grep -cE "^ *[0-9a-f]{8}-" || true; }
# token_keks FILE: the KEKs named by every token on the image, sorted, unique
token_keks() {
        vmc disk status --json "$1" >"$T/dst.json" || die "disk status $1 failed"
        json_get "$T/dst.json" "sorted(set(t.get('kek_id') for t in d['tokens']))"
}
show() { vmc vm show --connect "$LV_URI" --json vm1 >"$T/show.json" || die "vm show failed"; }
keks() { show; json_get "$T/show.json" "sorted(set(k.get('kek', '-') for k in d['disks']))"; }
# wait_console PATTERN: up to 90 s (TCG boots slowly on a loaded host)
wait_console() {
        for _ in $(seq 360); do
                grep -q "$1" "$T/console.log" 2>/dev/null && return 0
                sleep 0.25
        done
        die "the guest never printed $1: $(tail -c 2000 "$T/console.log" 2>/dev/null)"
}
# check_guest NAME=FILE...: the guest's hash of each device is its file's original
check_guest() {
        local a
        wait_console GUEST-DONE
        for a in "$@"; do
                assert_file_contains "$T/console.log" "SHA ${a%%=*} ${SHA[${a#*=}]}" "${a%%=*} as the guest reads it"
        done
        for _ in $(seq 100); do [ "$(domain_state)" = "shut off" ] && break; sleep 0.1; done
        assert_eq "$(domain_state)" "shut off" "domain state after the guest powered off"
}
# set_cmdline TEXT: the guest kit's kernel command line in the definition
set_cmdline() {
        virsh_ dumpxml --inactive vm1 | sed "s|<cmdline>.*</cmdline>|<cmdline>$1</cmdline>|" >"$T/re.xml"
        virsh_ define "$T/re.xml" >/dev/null
}

note "vm encrypt: the OS disk and two data disks under one KEK"
expect_rc 0 enc vmc vm encrypt "${V[@]}" --provider kms --progress none vm1
assert_eq "$(grep -c ' encrypted$' "$T/enc.out")" 3 "disks encrypted by vm encrypt"
KEK=$(keks | tr -d '[]" ')
assert_eq "$(grep -c , <<<"$KEK" || true)" 0 "one KEK for the VM: $KEK"

note "attach-disk refusals change nothing"
make_random_image "$T/q.img" 1M
printf 'QFI\xfb\0\0\0\3' | dd of="$T/q.img" conv=notrunc status=none
cp "$T/d4.img" "$T/other.img"
expect_rc 0 other-enc vmc disk encrypt --type luks1 --providers "$P" --provider kms --progress none "$T/other.img"
virsh_ dumpxml --inactive vm1 >"$T/before-refusals.xml"
expect_rc 5 att-again vmc vm attach-disk "${V[@]}" vm1 "$T/d1.img"
assert_file_contains "$T/att-again.err" "already attached to domain vm1 as vdb" "an attached image"
ln -s "$T/d2.img" "$T/d2-link.img"
expect_rc 5 att-link vmc vm attach-disk "${V[@]}" vm1 "$T/d2-link.img"
assert_file_contains "$T/att-link.err" "already attached to domain vm1 as vdc" "the same file by another path"
expect_rc 11 att-qcow vmc vm attach-disk "${V[@]}" --encrypt vm1 "$T/q.img"
assert_file_contains "$T/att-qcow.err" "is a qcow2 image, not a raw disk.*qemu-img convert" "a qcow2 image"
expect_rc 3 att-foreign vmc vm attach-disk "${V[@]}" vm1 "$T/other.img"
assert_file_contains "$T/att-foreign.err" "bound to KEK [^ ]+ at provider kms, not to domain vm1's KEK $KEK" \
        "an image under another KEK"
expect_rc 5 att-target vmc vm attach-disk "${V[@]}" --target vdb vm1 "$T/d3.img"
assert_file_contains "$T/att-target.err" "has a disk vdb already" "a taken target"
domain_xml vm2 5eed0000-0000-4000-8000-00000000a77b "$T/kit" "$T/console2.log" "$T/d5.img" >"$T/vm2.xml"
make_random_image "$T/plain2.img" 1M
virsh_ define "$T/vm2.xml" >/dev/null
expect_rc 2 att-plainvm vmc vm attach-disk "${V[@]}" --encrypt vm2 "$T/plain2.img"
assert_file_contains "$T/att-plainvm.err" "domain vm2 is not encrypted.*vmcrypt vm encrypt vm2" "--encrypt on a plain VM"
expect_rc 5 att-vm2disk vmc vm attach-disk "${V[@]}" vm1 "$T/d5.img"
assert_file_contains "$T/att-vm2disk.err" "already attached to domain vm2 as vda" "another domain's disk"
virsh_ undefine vm2 >/dev/null
virsh_ dumpxml --inactive vm1 >"$T/after-refusals.xml"
diff -u "$T/before-refusals.xml" "$T/after-refusals.xml" || die "a refused attach changed the domain XML"
assert_eq "$(sha256_range "$T/d3.img")" "${SHA[d3]}" "d3.img after the refusals"

note "hot-plug: attach-disk --encrypt to the running VM; the guest reads the new disk"
set_cmdline "console=ttyS0 panic=-1 quiet vmcrypt.disks=4"
rm -f "$T/console.log"
expect_rc 0 start1 vmc vm start "${V[@]}" vm1
wait_console GUEST-UP
expect_rc 5 rekey-running vmc vm rekey "${V[@]}" vm1
assert_file_contains "$T/rekey-running.err" "domain vm1 is running \(QEMU PID [0-9]+\).*shut it down" "rekey refused while running"
expect_rc 0 hotplug vmc vm attach-disk "${V[@]}" --encrypt --progress none vm1 "$T/d3.img"
assert_file_contains "$T/hotplug.out" "vm1: vdd attached \(.*d3.img\), running and persistent: encrypted first \(LUKS1, KEK $KEK\)" \
        "attach-disk output"
assert_eq "$(secrets_left)" 0 "libvirt secrets left after the hot-plug"
check_guest vda=os vdb=d1 vdc=d2 vdd=d3
virsh_ dumpxml --inactive vm1 >"$T/dom.xml"
assert_eq "$(grep -c "<encryption format='luks'" "$T/dom.xml")" 4 "the hot-plugged disk is in the definition, encrypted"

note "a plain disk attached while off; vm encrypt converts only it"
set_cmdline "console=ttyS0 panic=-1 quiet"
expect_rc 0 att-plain vmc vm attach-disk "${V[@]}" vm1 "$T/d4.img"
assert_file_contains "$T/att-plain.out" "vm1: vde attached \(.*d4.img\), persistent \(from the next start\)$" "plain attach"
expect_rc 0 enc2 vmc vm encrypt "${V[@]}" --progress none vm1
assert_eq "$(grep -c 'already done$' "$T/enc2.out")" 4 "disks left alone by the re-run"
assert_file_contains "$T/enc2.out" "vm1: vde encrypted" "the re-run converts the new disk"
assert_eq "$(keks | tr -d '[]" ')" "$KEK" "the new disk joined the VM's KEK"

note "auto-encrypt: vm set, vm show, and the next attach is encrypted without --encrypt"
expect_rc 0 set-on vmc vm set --connect "$LV_URI" vm1 --auto-encrypt on
show
assert_eq "$(json_get "$T/show.json" "d['auto_encrypt']")" true "auto_encrypt in vm show --json"
grep -q "^auto-encrypt: on" <<<"$(vmc vm show --connect "$LV_URI" vm1)" || die "vm show does not say auto-encrypt on"
grep -q "auto-encrypt=.on." <<<"$(virsh_ dumpxml --inactive vm1)" || die "the flag is not in the domain's metadata"
VMCRYPT_TEST_CRASH_POINT=after-marker expect_rc 137 att-crash vmc vm attach-disk "${V[@]}" --progress none \
        vm1 "$T/d5.img"
show
assert_eq "$(json_get "$T/show.json" "len(d['disks'])")" 5 "disks after attach-disk was killed while encrypting"
assert_eq "$(vmc disk status --json "$T/d5.img" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["state"])')" \
        encrypting "the killed attach-disk's image"
expect_rc 0 att-auto vmc vm attach-disk "${V[@]}" --progress none vm1 "$T/d5.img"
assert_file_contains "$T/att-auto.out" "vm1: vdf attached .*interrupted encryption finished \(KEK $KEK\)" \
        "auto-encrypt attach after a kill"
show
assert_eq "$(json_get "$T/show.json" "[k['state'] for k in d['disks']]")" \
        '["encrypted", "encrypted", "encrypted", "encrypted", "encrypted", "encrypted"]' "every disk encrypted"
expect_rc 0 set-off vmc vm set --connect "$LV_URI" vm1 --auto-encrypt off
show
assert_eq "$(json_get "$T/show.json" "d['auto_encrypt']")" false "auto_encrypt after off"

note "vm rekey: a new KEK on every disk, the old one on none; the guest reads them all"
for f in os d1 d2 d3 d4 d5; do cryptsetup luksDump "$T/$f.img" | grep -A1 "MK digest" | tr -d ' \t\n' >"$T/$f.mk0"; done
expect_rc 0 rekey vmc vm rekey "${V[@]}" vm1
assert_eq "$(grep -cE ' rekeyed($|: )' "$T/rekey.out")" 6 "disks rekeyed"
assert_file_contains "$T/rekey.out" "old KEK $KEK retired \(no disk uses it any more\)" \
        "the old KEK retired with the last disk that used it"
NEW=$(keks | tr -d '[]" ')
assert_ne "$NEW" "$KEK" "the VM's KEK after vm rekey"
assert_eq "$(grep -c , <<<"$NEW" || true)" 0 "one KEK for every disk after vm rekey: $NEW"
assert_file_contains "$T/rekey.out" "vm1: KEK $NEW at provider kms \(new\), was $KEK" "rekey summary"
show
assert_eq "$(json_get "$T/show.json" "d['rekey']")" null "no unfinished rekey recorded"
for f in os d1 d2 d3 d4 d5; do
        assert_eq "$(token_keks "$T/$f.img")" "[\"$NEW\"]" "KEKs in the tokens of $f.img after vm rekey (old $KEK)"
done
expect_rc 0 attrs vmc kms attrs --config "$T/kms.json" "$NEW" x-Name x-Identifier x-Component x-Vendor \
        x-Product x-Product_Version
assert_file_contains "$T/attrs.out" "x-Name: vm1" "new KEK tagged with the domain name"
assert_file_contains "$T/attrs.out" "x-Identifier: $UUID" "new KEK tagged with the domain UUID"
assert_file_contains "$T/attrs.out" "x-Component: Virtual Machine" "new KEK's component attribute"
assert_eq "$(grep -c '^x-' "$T/attrs.out")" 6 "custom attributes of the new KEK"
for f in os d1 d2 d3 d4 d5; do
        cryptsetup luksDump "$T/$f.img" | grep -A1 "MK digest" | tr -d ' \t\n' >"$T/$f.mk1"
        cmp -s "$T/$f.mk0" "$T/$f.mk1" || die "a shallow rekey changed the volume key of $f.img"
done
rm -f "$T/console.log"
expect_rc 0 start2 vmc vm start "${V[@]}" vm1
assert_eq "$(grep -c 'key released to QEMU' "$T/start2.out")" 6 "keys released after the rekey"
check_guest vda=os vdb=d1 vdc=d2 vdd=d3 vde=d4 vdf=d5

note "vm rekey --deep: new volume keys, the data intact"
expect_rc 0 deep vmc vm rekey "${V[@]}" --deep --progress none vm1
assert_eq "$(grep -cE ' rekeyed, new volume key($|: )' "$T/deep.out")" 6 "disks deep-rekeyed"
NEW2=$(keks | tr -d '[]" ')
assert_ne "$NEW2" "$NEW" "the VM's KEK after vm rekey --deep"
assert_eq "$(grep -c , <<<"$NEW2" || true)" 0 "one KEK for every disk after vm rekey --deep: $NEW2"
# A new volume key keeps the volume's UUID, so the old KEK's records still find
# their disks and the last one retires it.
assert_file_contains "$T/deep.out" "old KEK $NEW retired" "vm rekey --deep retires the VM's old KEK"
for f in os d1 d2 d3 d4 d5; do
        cryptsetup luksDump "$T/$f.img" | grep -A1 "MK digest" | tr -d ' \t\n' >"$T/$f.mk2"
        ! cmp -s "$T/$f.mk1" "$T/$f.mk2" || die "vm rekey --deep left the volume key of $f.img"
done

note "vm decrypt: data disks first, the OS disk last; every byte as before"
expect_rc 0 dec vmc vm decrypt "${V[@]}" --progress none vm1
assert_eq "$(grep -o 'vd[a-f] decrypted' "$T/dec.out" | tr '\n' ' ')" \
        "vdb decrypted vdc decrypted vdd decrypted vde decrypted vdf decrypted vda decrypted " "decryption order"
for f in os d1 d2 d3 d4 d5; do
        assert_eq "$(sha256_range "$T/$f.img")" "${SHA[$f]}" "$f.img after rekeys and vm decrypt"
done
! grep -q "<encryption" <<<"$(virsh_ dumpxml --inactive vm1)" || die "<encryption> left after vm decrypt"
