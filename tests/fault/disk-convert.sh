#!/usr/bin/env bash
# vmcrypt disk convert: LUKS2 <-> LUKS1 by rewriting the header only. The data
# bytes and the keys do not change: cryptsetup opens both results with the same
# key, QEMU reads the LUKS1 one, and a final decrypt gives the original bytes. A
# disk bound to a key provider keeps its binding both ways. What LUKS1 lacks is
# refused with the reason and nothing changes. SIGKILL at every crash point of the
# conversion, then `disk resume` (no key) or the same convert again, ends in an
# openable volume in one format or the other, with the same data.
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_testpoints
require_cmd cryptsetup qemu-img openssl numfmt
META=$(dirname "$0")/../interop/luks1-meta.py

make_text_key "$T/k"
make_random_image "$T/orig" 8M
ORIG=$(sha256_range "$T/orig")

fmt_of() { status_json "$1"; json_get "$T/status.json" "d['format']"; }
data_off() { status_json "$1"; json_get "$T/status.json" "d['data_offset']"; }
# The data bytes (ciphertext) of IMG as status places them: offset and size.
data_sha() {
        status_json "$1"
        sha256_range "$1" "$(json_get "$T/status.json" "d['data_offset']")" "$(json_get "$T/status.json" "d['data_size']")"
}
# opens IMG: cryptsetup takes the key, and the data bytes after the header are
# those of the reference image (ciphertext: the same key, the same place).
opens() { # img reference-ciphertext-sha what
        cs_can_open "$1" "$T/k" || die "$3: cryptsetup does not open $1 with its key"
        assert_eq "$(data_sha "$1")" "$2" "$3: data bytes"
}
qemu_plain() { # img out: the plaintext as QEMU's luks driver reads it
        rm -f "$2"
        qemu-img convert --object "secret,id=s0,file=$T/k" --image-opts "driver=luks,key-secret=s0,file.filename=$1" \
                -O raw "$2" >"$T/qemu.log" 2>&1 || die "qemu-img cannot read $1: $(cat "$T/qemu.log")"
}

note "LUKS2 -> LUKS1 -> LUKS2: same data offset, same data, cryptsetup and QEMU open it"
cp "$T/orig" "$T/a.img"
expect_rc 0 enc vmc disk encrypt --key-file "$T/k" --random-key --progress none "$T/a.img"
OFF=$(data_off "$T/a.img")
CT=$(data_sha "$T/a.img")
SIZE=$(file_size "$T/a.img")
expect_rc 0 to1 vmc disk convert --type luks1 "$T/a.img"
assert_eq "$(fmt_of "$T/a.img")" luks1 "format after convert --type luks1"
assert_eq "$(data_off "$T/a.img")" "$OFF" "data offset kept (LUKS1 payload offset 16 MiB)"
assert_eq "$(file_size "$T/a.img")" "$SIZE" "file size after convert"
opens "$T/a.img" "$CT" "LUKS1 from LUKS2"
qemu_plain "$T/a.img" "$T/a.raw"
assert_eq "$(sha256_range "$T/a.raw")" "$ORIG" "plaintext QEMU reads after convert to LUKS1"
expect_rc 0 again1 vmc disk convert --type luks1 "$T/a.img"
assert_file_contains "$T/again1.err" "already a luks1 volume" "second convert to the same format"
expect_rc 0 to2 vmc disk convert --type luks2 "$T/a.img"
assert_eq "$(fmt_of "$T/a.img")" luks2 "format after convert --type luks2"
opens "$T/a.img" "$CT" "LUKS2 from LUKS1"
expect_rc 0 dec vmc disk decrypt --key-file "$T/k" --progress none "$T/a.img"
assert_eq "$(sha256_range "$T/a.img")" "$ORIG" "plaintext after two conversions and decrypt"

note "LUKS1 (vmcrypt, 2 MiB) -> LUKS2 -> LUKS1"
cp "$T/orig" "$T/b.img"
expect_rc 0 enc1 vmc disk encrypt --type luks1 --key-file "$T/k" --random-key --progress none "$T/b.img"
CT1=$(data_sha "$T/b.img")
expect_rc 0 b-to2 vmc disk convert --type luks2 "$T/b.img"
assert_eq "$(data_off "$T/b.img")" $((2 << 20)) "LUKS2 data offset kept at 2 MiB"
opens "$T/b.img" "$CT1" "LUKS2 from LUKS1"
expect_rc 0 b-to1 vmc disk convert --type luks1 "$T/b.img"
opens "$T/b.img" "$CT1" "LUKS1 again"
qemu_plain "$T/b.img" "$T/b.raw"
assert_eq "$(sha256_range "$T/b.raw")" "$ORIG" "plaintext QEMU reads after LUKS1 -> LUKS2 -> LUKS1"

note "a detached header converts in place, both ways"
cp "$T/orig" "$T/d.img"
expect_rc 0 enc-d vmc disk encrypt --header "$T/d.hdr" --key-file "$T/k" --random-key --progress none "$T/d.img"
expect_rc 0 d-to1 vmc disk convert --type luks1 --header "$T/d.hdr" "$T/d.img"
cs_can_open "$T/d.img" "$T/k" "$T/d.hdr" || die "cryptsetup does not open the detached LUKS1 header"
cs luksDump "$T/d.hdr" | grep -Eq "^Version:\s+1" || die "the detached header is not LUKS1 after convert"
expect_rc 0 d-to2 vmc disk convert --type luks2 --header "$T/d.hdr" "$T/d.img"
cs_can_open "$T/d.img" "$T/k" "$T/d.hdr" || die "cryptsetup does not open the detached LUKS2 header"
expect_rc 0 dec-d vmc disk decrypt --header "$T/d.hdr" --key-file "$T/k" --progress none "$T/d.img"
assert_eq "$(sha256_range "$T/d.img")" "$ORIG" "plaintext after converting a detached header both ways"

note "a disk bound to a key provider keeps its binding both ways"
cat >"$T/providers.json" <<JSON
{ "providers": { "local": { "type": "native", "state_dir": "$T/native", "key_file": "$T/native.key" } } }
JSON
P=(--providers "$T/providers.json")
vmc provider init "${P[@]}" local >/dev/null
printf 'backup pass' >"$T/bp"
vmc provider backup "${P[@]}" --output "$T/backup.json" --passphrase-file "$T/bp" local >/dev/null
cp "$T/orig" "$T/c.img"
expect_rc 0 enc-c vmc disk encrypt "${P[@]}" --provider local --progress none "$T/c.img"
kek=$(status_json "$T/c.img"; json_get "$T/status.json" "d['tokens'][0]['kek_id']")
expect_rc 0 c-to1 vmc disk convert --type luks1 "$T/c.img"
assert_eq "$("$META" doc "$T/c.img" | "$PY" -c 'import json,sys; print(list(json.load(sys.stdin)["tokens"].values())[0]["kek_id"])')" \
        "$kek" "KEK id in the LUKS1 metadata area"
expect_rc 0 c-unlock1 vmc disk unlock "${P[@]}" --fd 3 --format base64 "$T/c.img" -- qemu-img convert \
        --object secret,id=s0,file=/dev/fd/3,format=base64 --image-opts "driver=luks,key-secret=s0,file.filename=$T/c.img" \
        -O raw "$T/c.raw"
assert_eq "$(sha256_range "$T/c.raw")" "$ORIG" "QEMU reads the converted bound disk with the released secret"
expect_rc 0 c-to2 vmc disk convert --type luks2 "$T/c.img"
status_json "$T/c.img"
assert_eq "$(json_get "$T/status.json" "[(t['type'], t['kek_id']) for t in d['tokens']]")" "[[\"vmcrypt\", \"$kek\"]]" \
        "the vmcrypt token back in the LUKS2 header"
expect_rc 0 c-unlock2 vmc disk unlock "${P[@]}" "$T/c.img" -- cryptsetup open --test-passphrase --key-file - "$T/c.img"

note "refusals change nothing: 4096-byte sectors, an Argon2 keyslot, qemu-img's LUKS1 header"
cp "$T/orig" "$T/s.img"
expect_rc 0 enc-4k vmc disk encrypt --sector-size 4096 --key-file "$T/k" --random-key --progress none "$T/s.img"
snap=$(snapshot "$T/s.img")
expect_rc 11 conv-4k vmc disk convert --type luks1 "$T/s.img"
assert_file_contains "$T/conv-4k.err" "4096-byte sectors and LUKS1 has only 512-byte sectors" "message for 4096-byte sectors"
assert_unchanged "$T/s.img" "$snap" "a volume with 4096-byte sectors after a refused convert"
cp "$T/orig" "$T/g.img"
expect_rc 0 enc-argon vmc disk encrypt --key-file "$T/k" "${FAST_KDF[@]}" --progress none "$T/g.img"
snap=$(snapshot "$T/g.img")
expect_rc 11 conv-argon vmc disk convert --type luks1 "$T/g.img"
assert_file_contains "$T/conv-argon.err" "keyslot 0 uses argon2id.*luksConvertKey --pbkdf pbkdf2 --key-slot 0" "message for an Argon2 keyslot"
assert_unchanged "$T/g.img" "$snap" "a volume with an Argon2 keyslot after a refused convert"
make_text_key "$T/wrong"
expect_rc 3 conv-wrong vmc disk convert --type luks1 --key-file "$T/wrong" "$T/g.img"
assert_unchanged "$T/g.img" "$snap" "a volume after convert with a wrong key"
# With its key the Argon2 keyslot is rebuilt with PBKDF2: same key, same data.
expect_rc 0 conv-argon-key vmc disk convert --type luks1 --key-file "$T/k" --iter-time 100 "$T/g.img"
status_json "$T/g.img"
assert_eq "$(json_get "$T/status.json" "[(k['id'], k['kdf']) for k in d['keyslots']]")" '[[0, "pbkdf2"]]' \
        "the rebuilt keyslot"
cs_can_open "$T/g.img" "$T/k" || die "cryptsetup does not open the rebuilt PBKDF2 keyslot with the same key"
qemu_plain "$T/g.img" "$T/g.raw"
assert_eq "$(sha256_range "$T/g.raw")" "$ORIG" "plaintext QEMU reads after an Argon2 keyslot was rebuilt"
if qemu-img create --object "secret,id=s0,file=$T/k" -f luks -o key-secret=s0,iter-time=10 "$T/q.img" 8M \
        >"$T/qc.log" 2>&1; then
        snap=$(snapshot "$T/q.img")
        expect_rc 6 conv-qemu vmc disk convert --type luks2 "$T/q.img"
        assert_file_contains "$T/conv-qemu.err" "no room before the data" "message for qemu-img's LUKS1 header"
        assert_unchanged "$T/q.img" "$snap" "qemu-img's LUKS1 image after a refused convert"
else
        grep -q "Unable to get accurate CPU usage" "$T/qc.log" || die "qemu-img create -f luks: $(cat "$T/qc.log")"
        echo "   (qemu-img cannot time its PBKDF here: the refusal of its LUKS1 header is not checked)"
fi
expect_rc 2 conv-usage vmc disk convert "$T/s.img"

note "SIGKILL at each crash point, then resume (no key) or the same convert again"
POINTS=(after-job-area after-marker after-convert-commit before-finalize after-header-write after-truncate after-secondary-magic after-magic)
cp "$T/orig" "$T/base2.img"
expect_rc 0 enc-base2 vmc disk encrypt --key-file "$T/k" --random-key --progress none "$T/base2.img"
CT2=$(data_sha "$T/base2.img")
kills=0
for to in luks1 luks2; do
        base=$T/base2.img; ct=$CT2
        dir=0
        if [ "$to" = luks2 ]; then base=$T/b.img; ct=$CT1; dir=1; fi
        i=0
        for point in "${POINTS[@]}"; do
                # Resume and a re-run take turns over the points, starting with the
                # other one in the other direction: each point sees both.
                i=$((i + 1))
                for how in resume rerun; do
                        [ $(( (i + dir) % 2 )) = 0 ] && [ "$how" = rerun ] && continue
                        [ $(( (i + dir) % 2 )) = 1 ] && [ "$how" = resume ] && continue
                        what="convert --type $to killed at $point, then $how"
                        cp "$base" "$T/x.img"
                        rc=0
                        VMCRYPT_TEST_CRASH_POINT=$point vmc disk convert --type "$to" "$T/x.img" >/dev/null 2>"$T/x.err" || rc=$?
                        case $rc in
                        137) kills=$((kills + 1)) ;;
                        0) ;; # this conversion does not pass that point
                        *) die "$what: exit $rc: $(cat "$T/x.err")" ;;
                        esac
                        # In between, the disk is the old volume, the new one, or a
                        # convert job that status names.
                        status_json "$T/x.img"
                        st=$(json_get "$T/status.json" "d['state']")
                        case $st in
                        encrypted) opens "$T/x.img" "$ct" "$what (before finishing)" ;;
                        converting)
                                # Only the finished new header, through its restored
                                # LUKS2 secondary copy, may open before the end.
                                if [ "$point" = after-secondary-magic ]; then
                                        opens "$T/x.img" "$ct" "$what (new header, secondary copy)"
                                else
                                        ! cs_can_open "$T/x.img" "$T/k" || die "$what: cryptsetup opens a half-converted disk"
                                fi ;;
                        *) die "$what: state $st" ;;
                        esac
                        if [ "$how" = resume ]; then
                                rc=0
                                vmc disk resume --progress none "$T/x.img" </dev/null >/dev/null 2>"$T/r.err" || rc=$?
                                [ "$rc" = 0 ] || [ "$rc" = 10 ] || die "$what: resume exit $rc: $(cat "$T/r.err")"
                        else
                                expect_rc 0 rerun vmc disk convert --type "$to" "$T/x.img"
                                assert_eq "$(fmt_of "$T/x.img")" "$to" "$what: format after the re-run"
                        fi
                        status_json "$T/x.img"
                        assert_eq "$(json_get "$T/status.json" "d['state']")" encrypted "$what: state at the end"
                        opens "$T/x.img" "$ct" "$what"
                        assert_eq "$(file_size "$T/x.img")" "$(file_size "$base")" "$what: file size"
                done
        done
done
note "$kills kills at the crash points of convert"
[ "$kills" -ge 12 ] || die "only $kills kills: are the crash point names in docs/engine.md still these?"
