#!/usr/bin/env bash
# Round trips of `vmcrypt disk` on every volume kind it makes (LUKS2 and LUKS1, header
# in front and detached, 512- and 4096-byte sectors):
#   encrypt  -> the image grows by the data offset (or not, detached); cryptsetup
#               accepts the volume and the key; status --json tells the truth
#   reencrypt-> the volume key (as cryptsetup dumps it) changes, the key file still opens
#   decrypt  -> the exact original bytes and size come back; status says plain
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_cmd cryptsetup openssl numfmt
require_python_cryptography

SIZE=$((40 << 20))
make_random_image "$T/orig" "$SIZE"
ORIG_SHA=$(sha256_range "$T/orig")

# one_kind TYPE HEADER(shift|detached) SECTOR
one_kind() {
        local type=$1 mode=$2 sector=$3 img=$T/img key=$T/$1-$2-$3.key hdr="" h=() off
        note "$type, header $mode, $sector-byte sectors"
        cp "$T/orig" "$img"
        rm -f "$key" "$T/hdr"
        if [ "$mode" = detached ]; then
                hdr=$T/hdr
                h=(--header "$hdr")
        fi

        assert_state "$img" "$hdr" plain
        assert_eq "$(json_get "$T/status.json" "d['format']")" none "format of a plain image"

        expect_rc 0 encrypt vmc disk encrypt --type "$type" --sector-size "$sector" "${h[@]}" \
                --new-key-file "$key" --progress json "$img"
        # Not a tty: progress comes as JSON lines on stderr, and the last says 100%.
        grep -q '"event":"progress"' "$T/encrypt.err" || die "encrypt printed no JSON progress line on stderr"
        tail -n 1 "$T/encrypt.err" >"$T/last.json"
        assert_eq "$(json_get "$T/last.json" "d['operation']")" encrypt "operation in the last progress line"
        assert_eq "$(json_get "$T/last.json" "int(d['percent'])")" 100 "percent in the last progress line"
        [ "$(stat -c %a "$key")" = 600 ] || die "new key file $key has mode $(stat -c %a "$key"), expected 600"

        if [ "$mode" = detached ]; then
                off=0
                [ -s "$hdr" ] || die "detached header $hdr was not written"
        elif [ "$type" = luks2 ]; then
                off=$((16 << 20))
        else
                off=$((2 << 20))
        fi
        assert_eq "$(file_size "$img")" $((SIZE + off)) "image size after encrypt"

        assert_state "$img" "$hdr" encrypted
        local s=$T/status.json
        assert_eq "$(json_get "$s" "d['format']")" "$type" "status format"
        assert_eq "$(json_get "$s" "d['sector_size']")" "$sector" "status sector_size"
        assert_eq "$(json_get "$s" "d['data_offset']")" "$off" "status data_offset"
        assert_eq "$(json_get "$s" "d['data_size']")" "$SIZE" "status data_size"
        assert_eq "$(json_get "$s" "d['cipher']")" aes-xts-plain64 "status cipher"
        assert_eq "$(json_get "$s" "d['key_bits']")" 512 "status key_bits"
        assert_eq "$(json_get "$s" "d['job']")" null "status job when finished"
        assert_eq "$(json_get "$s" "d['header']")" \
                "$([ "$mode" = detached ] && echo detached || echo embedded)" "status header"
        assert_eq "$(json_get "$s" "len(d['keyslots'])")" 1 "number of keyslots"
        assert_eq "$(json_get "$s" "d['keyslots'][0]['kdf']")" pbkdf2 "kdf of a random key file"

        # The peer's view: same offset, sector size and cipher; the key opens, a wrong one not.
        cs luksDump "${h[@]}" "$img" >"$T/dump" || die "cryptsetup luksDump rejects the $type volume"
        if [ "$type" = luks2 ]; then
                assert_file_contains "$T/dump" "offset:[[:space:]]+$off \[bytes\]" "luksDump data offset"
                assert_file_contains "$T/dump" "sector:[[:space:]]+$sector \[bytes\]" "luksDump sector size"
                assert_file_contains "$T/dump" "cipher:[[:space:]]+aes-xts-plain64" "luksDump cipher"
        else
                assert_file_contains "$T/dump" "Version:[[:space:]]+1" "luksDump version"
                assert_file_contains "$T/dump" "Payload offset:[[:space:]]+$((off / 512))" "luksDump payload offset"
                assert_file_contains "$T/dump" "Cipher mode:[[:space:]]+xts-plain64" "luksDump cipher mode"
        fi
        cs_can_open "$img" "$key" "$hdr" || die "cryptsetup does not accept the key vmcrypt made"
        make_text_key "$T/wrong.key"
        ! cs_can_open "$img" "$T/wrong.key" "$hdr" || die "cryptsetup accepts a wrong key"
        cs_volume_key "$img" "$key" "$T/vk1" "$hdr"

        expect_rc 0 reencrypt vmc disk reencrypt "${h[@]}" --key-file "$key" --progress none "$img"
        assert_state "$img" "$hdr" encrypted
        assert_eq "$(json_get "$T/status.json" "[(k['id'], k['kdf']) for k in d['keyslots']]")" \
                '[[0, "pbkdf2"]]' "keyslots after reencrypt (the same slot, the same KDF kind)"
        assert_eq "$(file_size "$img")" $((SIZE + off)) "image size after reencrypt"
        cs_can_open "$img" "$key" "$hdr" || die "the key file no longer opens the volume after reencrypt"
        cs_volume_key "$img" "$key" "$T/vk2" "$hdr"
        assert_eq "$(stat -c %s "$T/vk2")" 64 "volume key size after reencrypt"
        assert_ne "$(sha256_range "$T/vk2")" "$(sha256_range "$T/vk1")" "volume key after reencrypt"

        expect_rc 0 decrypt vmc disk decrypt "${h[@]}" --key-file "$key" --progress bar "$img"
        # The bar (asked for, though not a tty) redraws in place and ends full.
        tr '\r' '\n' <"$T/decrypt.err" | grep -v '^$' | tail -n 1 >"$T/lastbar"
        assert_file_contains "$T/lastbar" '^decrypt +\[#{30}\] 100\.0% .* in [0-9.]+ s' "last progress bar of decrypt"
        assert_eq "$(file_size "$img")" "$SIZE" "image size after decrypt"
        assert_eq "$(sha256_range "$img")" "$ORIG_SHA" "image content after encrypt+reencrypt+decrypt"
        assert_state "$img" "" plain
}

one_kind luks2 shift 512
one_kind luks2 shift 4096
one_kind luks2 detached 512
one_kind luks2 detached 4096
one_kind luks1 shift 512
one_kind luks1 detached 512

# Keys from stdin and user-chosen key files: Argon2id (made cheap) for LUKS2.
note "luks2 with a passphrase from stdin"
cp "$T/orig" "$T/img"
make_text_key "$T/pass"
expect_rc 0 enc-stdin vmc disk encrypt "${FAST_KDF[@]}" --key-file - --progress none "$T/img" <"$T/pass"
status_json "$T/img"
assert_eq "$(json_get "$T/status.json" "d['keyslots'][0]['kdf']")" argon2id "kdf of a passphrase"
cs_can_open "$T/img" "$T/pass" || die "cryptsetup does not accept the passphrase given on stdin"
expect_rc 0 dec-stdin vmc disk decrypt --key-file - --progress none "$T/img" <"$T/pass"
assert_eq "$(sha256_range "$T/img")" "$ORIG_SHA" "content after a stdin-key round trip"
assert_eq "$(file_size "$T/img")" "$SIZE" "size after a stdin-key round trip"
