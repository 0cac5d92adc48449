#!/usr/bin/env bash
# vmcrypt and cryptsetup read each other's work, and the bytes on disk are plain
# aes-xts-plain64 by an independent implementation:
#   - cryptsetup reencrypt --decrypt undoes a vmcrypt encrypt (header in front, and
#     detached; 512 and 4096-byte sectors) and gives back the original bytes;
#   - vmcrypt decrypts what cryptsetup reencrypt --encrypt made (--reduce-device-size
#     32M, and a detached header);
#   - Python's cryptography (AES-XTS, plain64 tweak) decrypts vmcrypt's data sectors
#     with the volume key cryptsetup dumps.
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_cmd cryptsetup openssl numfmt
require_python_cryptography

SIZE=$((40 << 20))
make_random_image "$T/orig" "$SIZE"
ORIG_SHA=$(sha256_range "$T/orig")
CS_FAST=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)

# xts_decrypt IMG VK OFFSET LEN SECTOR OUT: decrypt LEN bytes of IMG from OFFSET with
# the raw volume key VK, independently of vmcrypt and cryptsetup, into OUT.
xts_decrypt() {
        "$PY" - "$@" <<'EOF' || die "independent AES-XTS decryption of $1 failed"
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
img, vkf, off, length, sector, out = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]), sys.argv[6]
vk = open(vkf, "rb").read()
with open(img, "rb") as fi, open(out, "wb") as fo:
    fi.seek(off)
    pos = 0
    while pos < length:
        ct = fi.read(min(1 << 20, length - pos))
        for i in range(0, len(ct), sector):
            # plain64: the little-endian number of the 512-byte sector, even for
            # 4096-byte encryption sectors (LUKS2 never sets iv_large_sectors).
            tweak = ((pos + i) // 512).to_bytes(16, "little")
            d = Cipher(algorithms.AES(vk), modes.XTS(tweak)).decryptor()
            fo.write(d.update(ct[i:i + sector]) + d.finalize())
        pos += len(ct)
EOF
}

# xts_check IMG VK DATA_OFFSET SECTOR: the independent decryption gives the original.
xts_check() {
        xts_decrypt "$1" "$2" "$3" "$SIZE" "$4" "$T/xts.out"
        assert_eq "$(sha256_range "$T/xts.out")" "$ORIG_SHA" "independent AES-XTS decryption of $1"
        rm -f "$T/xts.out"
}

note "vmcrypt LUKS2 (header in front, 512) -> cryptsetup reencrypt --decrypt"
cp "$T/orig" "$T/a"
expect_rc 0 enc-a vmc disk encrypt --new-key-file "$T/a.key" --progress none "$T/a"
cs_volume_key "$T/a" "$T/a.key" "$T/a.vk"
xts_check "$T/a" "$T/a.vk" $((16 << 20)) 512
# The header leaves the file for new.hdr and the data moves back to offset 0;
# cryptsetup does not shrink the file, so compare the first SIZE bytes.
cs reencrypt --decrypt --force-offline-reencrypt --header "$T/a.newhdr" --key-file "$T/a.key" \
        "${CS_FAST[@]}" "$T/a" >"$T/cs.log" 2>&1 ||
        die "cryptsetup reencrypt --decrypt fails on a vmcrypt image: $(cat "$T/cs.log")"
assert_eq "$(sha256_range "$T/a" 0 "$SIZE")" "$ORIG_SHA" "bytes after cryptsetup decrypted a vmcrypt image"

note "vmcrypt LUKS2 (header in front, 4096) -> cryptsetup reencrypt --decrypt"
cp "$T/orig" "$T/b"
expect_rc 0 enc-b vmc disk encrypt --sector-size 4096 --new-key-file "$T/b.key" --progress none "$T/b"
cs reencrypt --decrypt --force-offline-reencrypt --header "$T/b.newhdr" --key-file "$T/b.key" \
        "${CS_FAST[@]}" "$T/b" >"$T/cs.log" 2>&1 ||
        die "cryptsetup reencrypt --decrypt fails on a vmcrypt 4096 image: $(cat "$T/cs.log")"
assert_eq "$(sha256_range "$T/b" 0 "$SIZE")" "$ORIG_SHA" "bytes after cryptsetup decrypted a 4096-sector vmcrypt image"

note "vmcrypt LUKS2 (detached, 4096) -> Python AES-XTS, then cryptsetup reencrypt --decrypt"
cp "$T/orig" "$T/c"
expect_rc 0 enc-c vmc disk encrypt --sector-size 4096 --header "$T/c.hdr" \
        --new-key-file "$T/c.key" --progress none "$T/c"
cs_volume_key "$T/c" "$T/c.key" "$T/c.vk" "$T/c.hdr"
xts_check "$T/c" "$T/c.vk" 0 4096
cs reencrypt --decrypt --force-offline-reencrypt --header "$T/c.hdr" --key-file "$T/c.key" \
        "${CS_FAST[@]}" "$T/c" >"$T/cs.log" 2>&1 ||
        die "cryptsetup reencrypt --decrypt fails on a detached vmcrypt image: $(cat "$T/cs.log")"
assert_eq "$(file_size "$T/c")" "$SIZE" "size after cryptsetup decrypted a detached vmcrypt image"
assert_eq "$(sha256_range "$T/c")" "$ORIG_SHA" "bytes after cryptsetup decrypted a detached vmcrypt image"

# cryptsetup 2.6 cannot reencrypt LUKS1 without device-mapper, so LUKS1 is proven by
# the independent decryption (and by qemu-img in disk-qemu.sh).
note "vmcrypt LUKS1 (header in front) -> Python AES-XTS"
cp "$T/orig" "$T/d"
expect_rc 0 enc-d vmc disk encrypt --type luks1 --new-key-file "$T/d.key" --progress none "$T/d"
cs_volume_key "$T/d" "$T/d.key" "$T/d.vk"
xts_check "$T/d" "$T/d.vk" $((2 << 20)) 512

note "cryptsetup reencrypt --encrypt --reduce-device-size 32M -> vmcrypt decrypt"
# cryptsetup takes the last 32 MiB as free space; only the first SIZE-32M bytes survive,
# and the decrypted volume is SIZE-16M bytes long.
cp "$T/orig" "$T/e"
make_text_key "$T/e.key"
cs reencrypt --encrypt --type luks2 --reduce-device-size 32M --key-file "$T/e.key" \
        "${CS_FAST[@]}" "$T/e" >"$T/cs.log" 2>&1 || die "cryptsetup reencrypt --encrypt failed: $(cat "$T/cs.log")"
assert_state "$T/e" "" encrypted
assert_eq "$(json_get "$T/status.json" "d['data_offset']")" $((16 << 20)) "data offset of a cryptsetup image"
expect_rc 0 dec-e vmc disk decrypt --key-file "$T/e.key" --progress none "$T/e"
assert_eq "$(file_size "$T/e")" $((SIZE - (16 << 20))) "size after vmcrypt decrypted a cryptsetup image"
assert_eq "$(sha256_range "$T/e" 0 $((SIZE - (32 << 20))))" "$(sha256_range "$T/orig" 0 $((SIZE - (32 << 20))))" \
        "bytes after vmcrypt decrypted a cryptsetup image"

note "cryptsetup reencrypt --encrypt --sector-size 4096 --header det.hdr -> vmcrypt decrypt --header"
cp "$T/orig" "$T/f"
make_text_key "$T/f.key"
cs reencrypt --encrypt --type luks2 --sector-size 4096 --header "$T/f.hdr" --key-file "$T/f.key" \
        "${CS_FAST[@]}" "$T/f" >"$T/cs.log" 2>&1 || die "cryptsetup reencrypt --encrypt --header failed: $(cat "$T/cs.log")"
assert_state "$T/f" "$T/f.hdr" encrypted
assert_eq "$(json_get "$T/status.json" "d['header']")" detached "header kind of a cryptsetup detached image"
expect_rc 0 dec-f vmc disk decrypt --header "$T/f.hdr" --key-file "$T/f.key" --progress none "$T/f"
assert_eq "$(file_size "$T/f")" "$SIZE" "size after vmcrypt decrypted a detached cryptsetup image"
assert_eq "$(sha256_range "$T/f")" "$ORIG_SHA" "bytes after vmcrypt decrypted a detached cryptsetup image"

note "cryptsetup luksFormat volume -> vmcrypt reencrypt keeps what cryptsetup wrote"
# The data area of a fresh cryptsetup volume reads as whatever the old bytes decrypt
# to; after vmcrypt rekeys it, the same plaintext must read back under the new key.
make_text_key "$T/g.key"
cp "$T/orig" "$T/g"
cs luksFormat --type luks2 --sector-size 4096 --key-file "$T/g.key" "${CS_FAST[@]}" "$T/g" >/dev/null 2>&1 ||
        die "cryptsetup luksFormat failed"
cs_volume_key "$T/g" "$T/g.key" "$T/g.vk1"
xts_decrypt "$T/g" "$T/g.vk1" $((16 << 20)) $((8 << 20)) 4096 "$T/g.pt1"
expect_rc 0 reenc-g vmc disk reencrypt --key-file "$T/g.key" --progress none "$T/g"
cs_volume_key "$T/g" "$T/g.key" "$T/g.vk2"
assert_ne "$(sha256_range "$T/g.vk2")" "$(sha256_range "$T/g.vk1")" "volume key after vmcrypt rekeyed a cryptsetup volume"
xts_decrypt "$T/g" "$T/g.vk2" $((16 << 20)) $((8 << 20)) 4096 "$T/g.pt2"
assert_eq "$(sha256_range "$T/g.pt2")" "$(sha256_range "$T/g.pt1")" "data of a cryptsetup volume after vmcrypt rekeyed it"
