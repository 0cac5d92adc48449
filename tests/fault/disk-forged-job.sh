#!/usr/bin/env bash
# A guest controls every byte of its raw disk until the host encrypts it. Here the
# "guest" plants what vmcrypt's own job state looks like (disk-forged-job.py): a job
# area at the end of the disk in the old unkeyed format and in today's format sealed
# under a made-up key, naming a smaller or a far larger original size; a job marker
# and a disguised LUKS header at the start. None of it may steer vmcrypt: encrypt
# takes every byte for data and keeps the disk whole (before, a forged "preparing"
# area made encrypt cut a 64 MiB disk to 31 MiB and exit 0); decrypt gives back every
# byte; status calls the disk plain and says what it saw; resume refuses, changing
# nothing; and no command grows or shrinks the file on the forged sizes.
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_cmd cryptsetup
[ -x "$PY" ] || die "$PY is missing: run scripts/deps.sh"
FORGE="$(dirname "$0")/disk-forged-job.py"
SIZE=$((64 << 20))

# roundtrip NAME: encrypt $T/g as a plain disk, check it is a whole LUKS volume of
# the disk's every byte, decrypt it back to the exact bytes.
roundtrip() {
        local what=$1 sha size
        sha=$(sha256_range "$T/g")
        size=$(file_size "$T/g")
        expect_rc 0 "$what-encrypt" vmc disk encrypt --new-key-file "$T/g.key" --progress none "$T/g"
        assert_eq "$(file_size "$T/g")" $((size + (16 << 20))) "$what: size after encrypt (the whole disk plus the header)"
        cs_can_open "$T/g" "$T/g.key" || die "$what: cryptsetup cannot open the result"
        status_json "$T/g"
        assert_eq "$(json_get "$T/status.json" "d['state']")" encrypted "$what: state after encrypt"
        assert_eq "$(json_get "$T/status.json" "d['data_size']")" "$size" "$what: encrypted data size"
        expect_rc 0 "$what-decrypt" vmc disk decrypt --key-file "$T/g.key" --progress none "$T/g"
        assert_eq "$(file_size "$T/g")" "$size" "$what: size after decrypt"
        assert_eq "$(sha256_range "$T/g")" "$sha" "$what: every byte back after decrypt"
        rm -f "$T/g.key"
}

for kind in v1 v2; do
        for orig in $((31 << 20)) $((1 << 40)); do
                what="forged $kind job area (original size $orig)"
                note "$what"
                make_random_image "$T/g" "$SIZE"
                "$PY" "$FORGE" "$kind" "$T/g" "$orig"
                snap=$(snapshot "$T/g")

                # status: plain, and it says a foreign job area is there
                status_json "$T/g"
                assert_eq "$(json_get "$T/status.json" "d['state']")" plain "$what: status"
                assert_eq "$(json_get "$T/status.json" "d['foreign_job']")" true "$what: status notes the foreign area"
                vmc disk status "$T/g" >"$T/st.txt"
                assert_file_contains "$T/st.txt" "not written by this host" "$what: status text"
                assert_unchanged "$T/g" "$snap" "$what: status changed the disk"

                # resume: refused, nothing changed
                make_text_key "$T/any.key"
                expect_rc 9 "resume-$kind" vmc disk resume --key-file "$T/any.key" --progress none "$T/g"
                assert_file_contains "$T/resume-$kind.err" "not one this host wrote" "$what: resume says why"
                assert_unchanged "$T/g" "$snap" "$what: refused resume changed the disk"

                # format without --force: the area is data, so "has data" is the refusal
                roundtrip "$kind"
        done
done

what="forged job marker"
note "$what"
make_random_image "$T/g" "$SIZE"
"$PY" "$FORGE" marker "$T/g"
status_json "$T/g"
assert_eq "$(json_get "$T/status.json" "d['state']")" plain "$what: status"
roundtrip marker

what="forged disguised header"
note "$what"
truncate -s $((32 << 20)) "$T/luks"
make_text_key "$T/guest.key"
cs luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$T/guest.key" "$T/luks"
make_random_image "$T/g" "$SIZE"
"$PY" "$FORGE" disguised "$T/g" 0 "$T/luks"
snap=$(snapshot "$T/g")
status_json "$T/g"
assert_eq "$(json_get "$T/status.json" "d['state']")" plain "$what: status"
expect_rc 0 resume-disguised vmc disk resume --key-file "$T/guest.key" --progress none "$T/g"
assert_file_contains "$T/resume-disguised.err" "nothing to resume" "$what: resume finds no job"
assert_unchanged "$T/g" "$snap" "$what: resume must not make the guest's header real"
cryptsetup isLuks "$T/g" && die "$what: the guest's header became a real LUKS header"
roundtrip disguised

what="job key"
note "$what"
assert_eq "$(stat -c %a "$VMCRYPT_STATE_DIR/job.key")" 600 "$what: mode"
assert_eq "$(stat -c %s "$VMCRYPT_STATE_DIR/job.key")" 32 "$what: size"
chmod 644 "$VMCRYPT_STATE_DIR/job.key"
make_random_image "$T/g" $((4 << 20))
snap=$(snapshot "$T/g")
expect_rc 8 key-open vmc disk encrypt --new-key-file "$T/g.key" --progress none "$T/g"
assert_file_contains "$T/key-open.err" "chmod 600" "$what: a readable key is refused with the fix"
assert_unchanged "$T/g" "$snap" "$what: refused encrypt changed the disk"
chmod 600 "$VMCRYPT_STATE_DIR/job.key"
rm -f "$T/g.key"
ln -s "$T" "$T/state-link"
expect_rc 8 dir-link env VMCRYPT_STATE_DIR="$T/state-link" "$VMCRYPT" disk encrypt --new-key-file "$T/g.key" --progress none "$T/g"
assert_file_contains "$T/dir-link.err" "symlink" "$what: a symlinked state directory is refused"
assert_unchanged "$T/g" "$snap" "$what: refused encrypt changed the disk"
echo "forged job state never steers vmcrypt"
