#!/usr/bin/env bash
# A LUKS1 disk carries its binding: the vmcrypt tokens live in a metadata area in
# the LUKS1 header (between the keyslots and the data), not in a file beside the
# image. So a copied and renamed image unlocks from its new path; status shows the
# binding; cryptsetup and QEMU still open the volume; deep rekey keeps it; a sidecar
# left by an older vmcrypt moves into the header at the next unlock, bind or rekey;
# SIGKILL in the middle of any update of the area leaves the old binding or the new
# one, never none; a header with no room refuses the binding and changes nothing.
# The area is read here by an independent reader (luks1-meta.py).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli
require_testpoints
require_cmd qemu-img
META=$(dirname "$0")/luks1-meta.py

P=$T/providers.json
cat >"$P" <<JSON
{ "providers": { "local": { "type": "native", "state_dir": "$T/native", "key_file": "$T/native.key" } } }
JSON
vmc provider init --providers "$P" local >/dev/null
printf 'backup pass' >"$T/bp"
vmc provider backup --providers "$P" --output "$T/backup.json" --passphrase-file "$T/bp" local >/dev/null

unlock() { vmc disk unlock --providers "$P" "$@"; }
ntokens() { "$META" doc "$1" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["tokens"]))'; }
# qemu_reads IMG OUT: the plaintext as QEMU's luks driver sees it, key from the provider.
qemu_reads() {
        rm -f "$2"
        unlock --fd 3 --format base64 "$1" -- qemu-img convert --object secret,id=s0,file=/dev/fd/3,format=base64 \
                --image-opts "driver=luks,key-secret=s0,file.filename=$1" -O raw "$2" >"$T/qemu.log" 2>&1 ||
                die "qemu-img cannot read $1 with the released secret: $(cat "$T/qemu.log")"
}

note "encrypt --type luks1 --provider: the binding is in the header, no sidecar"
make_random_image "$T/orig" 8M
cp "$T/orig" "$T/a.img"
expect_rc 0 enc vmc disk encrypt --providers "$P" --provider local --type luks1 --vm-name a --progress none "$T/a.img"
[ ! -e "$T/a.img.vmcrypt.json" ] || die "encrypt wrote a sidecar $T/a.img.vmcrypt.json"
assert_eq "$(ntokens "$T/a.img")" 1 "tokens in the header's metadata area"
status_json "$T/a.img"
assert_eq "$(json_get "$T/status.json" "d['format']")" luks1 "format"
assert_eq "$(json_get "$T/status.json" "[t['type'] for t in d['tokens']]")" '["vmcrypt"]' "status tokens of LUKS1"
assert_eq "$(json_get "$T/status.json" "d['tokens'][0]['provider']")" local "status shows the provider"
kek=$("$META" doc "$T/a.img" | "$PY" -c 'import json,sys; print(list(json.load(sys.stdin)["tokens"].values())[0]["kek_id"])')
assert_eq "$(json_get "$T/status.json" "d['tokens'][0]['kek_id']")" "$kek" "status shows the KEK id"

note "copy, rename: the copy unlocks from its new path; cryptsetup and QEMU open it"
cp "$T/a.img" "$T/copy.img"
mkdir "$T/moved"
mv "$T/copy.img" "$T/moved/renamed.img"
ls "$T"/*.vmcrypt.json "$T"/moved/*.vmcrypt.json 2>/dev/null && die "a sidecar exists"
expect_rc 0 check-moved unlock --check "$T/moved/renamed.img"
expect_rc 0 cs-moved unlock "$T/moved/renamed.img" -- cryptsetup open --test-passphrase --key-file - "$T/moved/renamed.img"
qemu_reads "$T/moved/renamed.img" "$T/moved.raw"
assert_eq "$(sha256_range "$T/moved.raw")" "$(sha256_range "$T/orig")" "guest bytes QEMU reads from the moved copy"
cs luksDump "$T/moved/renamed.img" >"$T/dump.txt" || die "cryptsetup luksDump rejects the header with the area"
assert_file_contains "$T/dump.txt" "^Version:\s+1" "still LUKS1 for cryptsetup"

note "deep rekey (reencrypt) of LUKS1 keeps the binding in the new header"
expect_rc 0 reenc vmc disk reencrypt --providers "$P" --progress none "$T/a.img" </dev/null
assert_eq "$(ntokens "$T/a.img")" 1 "tokens after reencrypt"
qemu_reads "$T/a.img" "$T/a.raw"
assert_eq "$(sha256_range "$T/a.raw")" "$(sha256_range "$T/orig")" "guest bytes after reencrypt"

note "bind a LUKS1 volume cryptsetup made: area written, its passphrase still works"
make_text_key "$T/pass"
make_luks "$T/b.img" luks1 "$T/pass" 8M
expect_rc 0 bind vmc disk bind --providers "$P" --provider local --key-file "$T/pass" "$T/b.img"
[ ! -e "$T/b.img.vmcrypt.json" ] || die "bind wrote a sidecar"
assert_eq "$(ntokens "$T/b.img")" 1 "tokens after bind"
cs_can_open "$T/b.img" "$T/pass" || die "bind broke the volume's passphrase"
expect_rc 0 cs-b unlock "$T/b.img" -- cryptsetup open --test-passphrase --key-file - "$T/b.img"

note "a sidecar of an older vmcrypt: read, then moved into the header by unlock and by rekey"
for how in unlock rekey bind; do
        cp "$T/b.img" "$T/old-$how.img"
        "$META" doc "$T/old-$how.img" >"$T/old-$how.img.vmcrypt.json"
        "$META" wipe "$T/old-$how.img"
        "$META" doc "$T/old-$how.img" >/dev/null && die "wipe left an area"
        status_json "$T/old-$how.img"
        assert_eq "$(json_get "$T/status.json" "len(d['tokens'])")" 1 "status shows the binding of a sidecar"
        if [ $how = unlock ]; then
                # convert would leave a sidecar's binding behind: refused, unchanged.
                snap=$(snapshot "$T/old-$how.img")
                expect_rc 11 conv-sidecar vmc disk convert --type luks2 "$T/old-$how.img"
                assert_file_contains "$T/conv-sidecar.err" "move it into the header first" "convert with a sidecar"
                assert_unchanged "$T/old-$how.img" "$snap" "an image with a sidecar after a refused convert"
        fi
        case $how in
        unlock) expect_rc 0 "mig-$how" unlock "$T/old-$how.img" -- cryptsetup open --test-passphrase --key-file - "$T/old-$how.img" ;;
        rekey) expect_rc 0 "mig-$how" vmc disk rekey --providers "$P" "$T/old-$how.img" ;;
        bind) expect_rc 0 "mig-$how" vmc disk bind --providers "$P" --provider local --key-file "$T/pass" "$T/old-$how.img" ;;
        esac
        [ ! -e "$T/old-$how.img.vmcrypt.json" ] || die "$how left the sidecar in place"
        want=1; [ $how = bind ] && want=2
        assert_eq "$(ntokens "$T/old-$how.img")" "$want" "tokens moved into the header by $how"
        mv "$T/old-$how.img" "$T/old-$how.moved"
        expect_rc 0 "mig-$how-moved" unlock --check "$T/old-$how.moved"
done

note "a detached LUKS1 header keeps its binding beside the header file; status shows it"
make_random_image "$T/d.img" 4M
expect_rc 0 create-d vmc disk encrypt --providers "$P" --provider local --type luks1 --header "$T/d.hdr" \
        --progress none "$T/d.img"
[ -f "$T/d.hdr.vmcrypt.json" ] || die "no sidecar beside the detached LUKS1 header"
status_json "$T/d.img" "$T/d.hdr"
assert_eq "$(json_get "$T/status.json" "[t['provider'] for t in d['tokens']]")" '["local"]' "status of a detached LUKS1 header"
expect_rc 0 unlock-d unlock --header "$T/d.hdr" "$T/d.img" -- cryptsetup open --test-passphrase --header "$T/d.hdr" \
        --key-file - "$T/d.img"

note "SIGKILL during an update of the area: the old binding or the new one, never none"
kills=0
for point in luks1-meta-half luks1-meta-written; do
        for n in 1 2 3 4; do
                for op in "rekey --secret" rekey; do
                        before=$("$META" doc "$T/b.img")
                        rc=0
                        # shellcheck disable=SC2086
                        VMCRYPT_TEST_CRASH_POINT=$point:$n vmc disk $op --providers "$P" "$T/b.img" \
                                >/dev/null 2>"$T/kill.err" || rc=$?
                        [ "$rc" = 137 ] && kills=$((kills + 1))
                        after=$("$META" doc "$T/b.img") ||
                                die "$op killed at $point:$n: no valid copy of the metadata area is left"
                        # The first update torn: nothing of it may show.
                        [ "$rc" = 137 ] && [ "$point:$n" = luks1-meta-half:1 ] && [ "$after" != "$before" ] &&
                                die "$op killed with a torn copy at $point:$n, yet the document changed"
                        expect_rc 0 "kill-check" unlock --check "$T/b.img"
                        unlock "$T/b.img" -- cryptsetup open --test-passphrase --key-file - "$T/b.img" ||
                                die "$op killed at $point:$n: cryptsetup rejects the released secret"
                done
        done
done
note "$kills kills landed inside an update of the area"
[ "$kills" -ge 8 ] || die "only $kills kills hit the area's test points: the test exercised too little"
expect_rc 0 tidy vmc disk rekey --providers "$P" --secret "$T/b.img"
assert_eq "$(ntokens "$T/b.img")" 1 "one token after a clean rekey"
"$PY" - "$META" "$T/b.img" <<'PY' || die "after the kills one copy of the area is not valid"
import subprocess, sys
out = subprocess.run([sys.argv[1], "copies", sys.argv[2]], capture_output=True, text=True).stdout.split("\n")
assert all(l.endswith(" valid") for l in out if l), out
PY

note "a kill while bind writes the area: the earlier binding still unlocks"
cp "$T/b.img" "$T/c.img"
rc=0
VMCRYPT_TEST_CRASH_POINT=luks1-meta-half vmc disk bind --providers "$P" --provider local --key-file "$T/pass" \
        "$T/c.img" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 137 "bind killed at luks1-meta-half"
assert_eq "$(ntokens "$T/c.img")" 1 "tokens after a bind killed mid-write"
expect_rc 0 c-check unlock --check "$T/c.img"

note "a LUKS1 header without room between keyslots and data: binding refused, nothing changes"
truncate -s 8M "$T/full.img"
cs luksFormat --type luks1 --offset 4040 --pbkdf-force-iterations 1000 --key-file "$T/pass" "$T/full.img" >/dev/null
snap=$(snapshot "$T/full.img")
expect_rc 6 full vmc disk bind --providers "$P" --provider local --key-file "$T/pass" "$T/full.img"
assert_file_contains "$T/full.err" "no room for vmcrypt's metadata area" "message for a full LUKS1 header"
[ ! -e "$T/full.img.vmcrypt.json" ] || die "a refused bind wrote a sidecar"
assert_unchanged "$T/full.img" "$snap" "a LUKS1 image after a refused bind"
expect_rc 0 full-open cs open --test-passphrase --key-file "$T/pass" "$T/full.img"
keys_done
