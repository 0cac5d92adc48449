#!/usr/bin/env bash
# QEMU's own `luks` block driver (LUKS1 only in QEMU 7.2) reads the images vmcrypt
# encrypts with --type luks1, and vmcrypt decrypts images QEMU wrote.
# QEMU takes the passphrase from a `secret` object whose data must be valid UTF-8.
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_cmd qemu-img cryptsetup openssl numfmt

SIZE=$((40 << 20))
make_random_image "$T/orig" "$SIZE"
ORIG_SHA=$(sha256_range "$T/orig")

# qemu_read IMG KEYFILE OUT: the plaintext as QEMU sees it, as a raw file.
qemu_read() {
        rm -f "$3"
        qemu-img convert --object "secret,id=s0,file=$2" \
                --image-opts "driver=luks,key-secret=s0,file.filename=$1" -O raw "$3" \
                >"$T/qemu.log" 2>&1 || die "qemu-img cannot read $1: $(cat "$T/qemu.log")"
}

note "vmcrypt --type luks1 with a key file of the user's (text) -> qemu-img reads it"
make_text_key "$T/a.key"
cp "$T/orig" "$T/a"
expect_rc 0 enc-a vmc disk encrypt --type luks1 --key-file "$T/a.key" --iter-time 100 \
        --progress none "$T/a"
qemu_read "$T/a" "$T/a.key" "$T/a.raw"
assert_eq "$(file_size "$T/a.raw")" "$SIZE" "size QEMU sees"
assert_eq "$(sha256_range "$T/a.raw")" "$ORIG_SHA" "bytes QEMU reads from a vmcrypt LUKS1 image"

note "vmcrypt --type luks1 --new-key-file -> qemu-img reads it with that key file"
# The key files vmcrypt makes are what a host hands to QEMU, so QEMU must accept one
# as it is: its content must be valid UTF-8.
cp "$T/orig" "$T/b"
expect_rc 0 enc-b vmc disk encrypt --type luks1 --new-key-file "$T/b.key" --progress none "$T/b"
"$PY" -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$T/b.key" 2>/dev/null ||
        die "the key file vmcrypt made is not valid UTF-8, so QEMU's secret object rejects it ('Data from secret s0 is not valid UTF-8'); vmcrypt must store the unlock secret as text"
qemu_read "$T/b" "$T/b.key" "$T/b.raw"
assert_eq "$(sha256_range "$T/b.raw")" "$ORIG_SHA" "bytes QEMU reads with a vmcrypt-made key file"

note "cryptsetup formats a LUKS1 image, qemu-img fills it -> vmcrypt decrypts it"
# (qemu-img create -f luks is not used: under load its PBKDF benchmark fails at
# random with "Unable to get accurate CPU usage".)
make_text_key "$T/c.key"
truncate -s $((SIZE + (2 << 20))) "$T/c"
cs luksFormat --type luks1 --pbkdf-force-iterations 1000 --key-file "$T/c.key" "$T/c" >"$T/cs.log" 2>&1 ||
        die "cryptsetup luksFormat --type luks1 failed: $(cat "$T/cs.log")"
qemu-img convert -n -f raw "$T/orig" --object "secret,id=s0,file=$T/c.key" \
        --target-image-opts "driver=luks,key-secret=s0,file.filename=$T/c" >"$T/qemu.log" 2>&1 ||
        die "qemu-img could not write the LUKS1 image: $(cat "$T/qemu.log")"
assert_state "$T/c" "" encrypted
assert_eq "$(json_get "$T/status.json" "d['format']")" luks1 "format of a LUKS1 image QEMU wrote"
expect_rc 0 dec-c vmc disk decrypt --key-file "$T/c.key" --progress none "$T/c"
assert_eq "$(file_size "$T/c")" "$SIZE" "size after vmcrypt decrypted a QEMU image"
assert_eq "$(sha256_range "$T/c")" "$ORIG_SHA" "bytes after vmcrypt decrypted a QEMU image"

note "a wrong key: QEMU refuses the vmcrypt image"
make_text_key "$T/wrong.key"
! qemu-img convert --object "secret,id=s0,file=$T/wrong.key" \
        --image-opts "driver=luks,key-secret=s0,file.filename=$T/a" -O raw "$T/w.raw" 2>/dev/null ||
        die "qemu-img opened a vmcrypt image with a wrong key"
