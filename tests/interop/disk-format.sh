#!/usr/bin/env bash
# `vmcrypt disk create` and `format` make volumes cryptsetup and QEMU accept, of the
# size asked for; `format` refuses to destroy data without --yes; and the in-place
# jobs work on a block device (a loop device) with a detached header.
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_cmd cryptsetup qemu-img losetup openssl numfmt

SIZE=$((40 << 20))
make_random_image "$T/orig" "$SIZE"
ORIG_SHA=$(sha256_range "$T/orig")

# check_volume IMG KEY HDR TYPE SECTOR: status and cryptsetup agree it is a finished
# volume of TYPE with SECTOR-byte sectors, and the key opens it.
check_volume() {
        local img=$1 key=$2 hdr=$3 type=$4 sector=$5
        assert_state "$img" "$hdr" encrypted
        assert_eq "$(json_get "$T/status.json" "d['format']")" "$type" "format of $img"
        assert_eq "$(json_get "$T/status.json" "d['sector_size']")" "$sector" "sector size of $img"
        assert_eq "$(json_get "$T/status.json" "d['job']")" null "job of $img"
        local h=()
        [ -z "$hdr" ] || h=(--header "$hdr")
        cs luksDump "${h[@]}" "$img" >/dev/null || die "cryptsetup luksDump rejects $img"
        cs_can_open "$img" "$key" "$hdr" || die "cryptsetup does not accept the key of $img"
}

note "create: a new LUKS2 disk of 40 MiB"
expect_rc 0 create vmc disk create --new-key-file "$T/c.key" 40M "$T/c"
check_volume "$T/c" "$T/c.key" "" luks2 512
assert_eq "$(json_get "$T/status.json" "d['data_size']")" "$SIZE" "usable size of a created disk"
assert_eq "$(file_size "$T/c")" $((SIZE + (16 << 20))) "file size of a created disk (header + data)"
snap=$(snapshot "$T/c")
expect_rc 5 create-exists vmc disk create --new-key-file "$T/c2.key" 40M "$T/c"
assert_unchanged "$T/c" "$snap" "create over an existing file"
assert_file_contains "$T/create-exists.err" 'exist' "message of create over an existing file"

note "create: LUKS2 with 4096-byte sectors"
expect_rc 0 create4k vmc disk create --sector-size 4096 --new-key-file "$T/c4.key" 40M "$T/c4"
check_volume "$T/c4" "$T/c4.key" "" luks2 4096

note "create: a LUKS1 disk QEMU can fill; vmcrypt decrypts what QEMU wrote"
make_text_key "$T/c1.key"
expect_rc 0 create1 vmc disk create --type luks1 --key-file "$T/c1.key" --iter-time 100 40M "$T/c1"
check_volume "$T/c1" "$T/c1.key" "" luks1 512
qemu-img convert -n -f raw "$T/orig" --object "secret,id=s0,file=$T/c1.key" \
        --target-image-opts "driver=luks,key-secret=s0,file.filename=$T/c1" >"$T/qemu.log" 2>&1 ||
        die "qemu-img cannot write a disk vmcrypt created: $(cat "$T/qemu.log")"
expect_rc 0 dec-c1 vmc disk decrypt --key-file "$T/c1.key" --progress none "$T/c1"
assert_eq "$(file_size "$T/c1")" "$SIZE" "size after decrypting a created disk"
assert_eq "$(sha256_range "$T/c1")" "$ORIG_SHA" "content QEMU wrote into a created disk"

note "format: refuses without --yes, then formats in place (the file keeps its size)"
cp "$T/orig" "$T/f"
snap=$(snapshot "$T/f")
rc=0
vmc disk format --new-key-file "$T/f.key" "$T/f" </dev/null >"$T/f.out" 2>"$T/f.err" || rc=$?
[ "$rc" != 0 ] || die "format without --yes destroyed data without asking"
assert_unchanged "$T/f" "$snap" "format without --yes"
assert_file_contains "$T/f.err" "--yes" "message of format without --yes"
expect_rc 0 format vmc disk format --yes --new-key-file "$T/f.key" "$T/f"
check_volume "$T/f" "$T/f.key" "" luks2 512
assert_eq "$(file_size "$T/f")" "$SIZE" "file size after format"
assert_eq "$(json_get "$T/status.json" "d['data_offset'] + d['data_size']")" "$SIZE" "data area of a formatted file"

note "format: LUKS1 and a detached header"
cp "$T/orig" "$T/g"
expect_rc 0 format1 vmc disk format --yes --type luks1 --new-key-file "$T/g.key" "$T/g"
check_volume "$T/g" "$T/g.key" "" luks1 512
cp "$T/orig" "$T/h"
expect_rc 0 format-det vmc disk format --yes --sector-size 4096 --header "$T/h.hdr" \
        --new-key-file "$T/h.key" "$T/h"
check_volume "$T/h" "$T/h.key" "$T/h.hdr" luks2 4096
assert_eq "$(json_get "$T/status.json" "d['header']")" detached "header of a detached format"
assert_eq "$(json_get "$T/status.json" "d['data_size']")" "$SIZE" "data size of a detached format"

note "a block device: format, and encrypt/decrypt in place with a detached header"
cp "$T/orig" "$T/dev.img"
LOOP=$(losetup --show -f "$T/dev.img") || die "cannot attach a loop device"
track_loop "$LOOP"
expect_rc 0 dev-encrypt vmc disk encrypt --header "$T/dev.hdr" --new-key-file "$T/dev.key" \
        --progress none "$LOOP"
check_volume "$LOOP" "$T/dev.key" "$T/dev.hdr" luks2 512
assert_eq "$(json_get "$T/status.json" "d['data_size']")" "$SIZE" "data size on a device"
expect_rc 0 dev-decrypt vmc disk decrypt --header "$T/dev.hdr" --key-file "$T/dev.key" \
        --progress none "$LOOP"
assert_eq "$(sha256_range "$LOOP")" "$ORIG_SHA" "device content after encrypt and decrypt"
expect_rc 0 dev-format vmc disk format --yes --new-key-file "$T/devf.key" "$LOOP"
check_volume "$LOOP" "$T/devf.key" "" luks2 512
