#!/usr/bin/env bash
# vmcrypt encrypts raw disks only. Images in container formats that qemu-img makes
# (qcow2, VMDK, VHD, VHDX, VDI, QED) are refused with exit 11 and a message naming
# the format and the way out (qemu-img convert -O raw), and the file is left as it
# was; a sparse qcow2 used to be encrypted as bytes or fail with exit 2 (usage).
# A raw disk whose guest wrote a container magic is refused too, and --force-raw
# encrypts it; the raw copy made by qemu-img convert encrypts as usual.
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_cmd qemu-img cryptsetup openssl numfmt

make_text_key "$T/k"
for fmt in qcow2 vmdk vpc vhdx vdi qed; do
        note "qemu-img create -f $fmt: refused, unchanged"
        img=$T/disk.$fmt
        qemu-img create -q -f "$fmt" "$img" 64M >"$T/qi.log" 2>&1 || die "qemu-img create -f $fmt: $(cat "$T/qi.log")"
        snap=$(snapshot "$img")
        expect_rc 11 "enc-$fmt" vmc disk encrypt --key-file "$T/k" --random-key --progress none "$img"
        name=$fmt; [ "$fmt" = vpc ] && name=vhd
        assert_file_contains "$T/enc-$fmt.err" "is a $name image, not a raw disk" "message for $fmt"
        assert_file_contains "$T/enc-$fmt.err" "qemu-img convert -O raw" "the way out for $fmt"
        assert_unchanged "$img" "$snap" "a refused $fmt image"
        # The same with a detached header: nothing is created either.
        expect_rc 11 "encd-$fmt" vmc disk encrypt --header "$T/h.$fmt" --key-file "$T/k" --random-key \
                --progress none "$img"
        [ ! -e "$T/h.$fmt" ] || die "a refused detached encrypt of a $fmt image left $T/h.$fmt behind"
        assert_unchanged "$img" "$snap" "a refused $fmt image (detached)"
done

note "a fixed VHD (footer at the end only) is refused as well"
qemu-img create -q -f vpc -o subformat=fixed "$T/fixed.vhd" 8M
head -c 8 "$T/fixed.vhd" | grep -q conectix && die "a fixed VHD should carry its footer at the end only"
expect_rc 11 enc-fixed vmc disk encrypt --key-file "$T/k" --random-key --progress none "$T/fixed.vhd"
assert_file_contains "$T/enc-fixed.err" "is a vhd image" "message for a fixed VHD"

note "the documented route: convert to raw, then encrypt; QEMU reads the guest's bytes"
make_random_image "$T/guest" 8M
qemu-img convert -q -f raw -O qcow2 "$T/guest" "$T/q.qcow2"
qemu-img convert -q -f qcow2 -O raw "$T/q.qcow2" "$T/q.raw"
expect_rc 0 enc-raw vmc disk encrypt --type luks1 --key-file "$T/k" --random-key --progress none "$T/q.raw"
qemu-img convert --object "secret,id=s0,file=$T/k" \
        --image-opts "driver=luks,key-secret=s0,file.filename=$T/q.raw" -O raw "$T/q.plain" >"$T/qemu.log" 2>&1 ||
        die "qemu-img cannot read the encrypted raw copy: $(cat "$T/qemu.log")"
assert_eq "$(sha256_range "$T/q.plain")" "$(sha256_range "$T/guest")" "guest bytes after convert + encrypt"

note "a raw disk whose guest wrote QFI\\xfb at sector 0: refused, --force-raw encrypts it"
make_random_image "$T/raw" 8M
printf 'QFI\xfb' | dd of="$T/raw" conv=notrunc status=none
cp "$T/raw" "$T/raw.orig"
expect_rc 11 enc-forged vmc disk encrypt --key-file "$T/k" --random-key --progress none "$T/raw"
assert_file_contains "$T/enc-forged.err" "--force-raw" "the override is named"
expect_rc 0 enc-force vmc disk encrypt --force-raw --key-file "$T/k" --random-key --progress none "$T/raw"
assert_state "$T/raw" "" encrypted
cs_can_open "$T/raw" "$T/k" || die "cryptsetup cannot open the disk encrypted with --force-raw"
expect_rc 0 dec-force vmc disk decrypt --key-file "$T/k" --progress none "$T/raw"
cmp -s "$T/raw" "$T/raw.orig" || die "decrypt did not give back the guest's bytes"

note "--force-raw is an encrypt option only"
expect_rc 2 force-dec vmc disk decrypt --force-raw --key-file "$T/k" "$T/raw"
