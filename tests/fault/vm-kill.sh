#!/usr/bin/env bash
# SIGKILL `vmcrypt vm encrypt`, `vm rekey --deep`, `vm rekey` and `vm decrypt` at
# random moments (rate-limited runs over a VM with an OS disk and a data disk,
# through a private libvirtd and vmcrypt-kms), each time running the same command
# again, killed or not: ROUNDS kills of each, 20 in all by default. After the
# encrypt kills every disk is under one KEK with its XML wired; after each kind of
# rekey every disk is under one new KEK (no disk keeps a token of the old one, no
# unfinished rekey is recorded) and opens; after vm decrypt every byte and the
# domain XML are as before. No guest boots here: tests/interop/vm-libvirt.sh and
# vm-lifecycle.sh prove that QEMU reads such disks.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../interop/keys-lib.sh"
. "$(dirname "$0")/../interop/vm-lib.sh"
require_vm_peers
require_keys_cli

ROUNDS=${ROUNDS:-5}
SEED=${SEED:-$RANDOM}
RANDOM=$SEED
echo "random seed $SEED (rerun with SEED=$SEED to repeat the same delays)"

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
libvirtd_start
V=(--connect "$LV_URI" --providers "$P")
make_random_image "$T/os.img" 8M
make_random_image "$T/data.img" 6M
OS_SHA=$(sha256_range "$T/os.img")
DATA_SHA=$(sha256_range "$T/data.img")
mkdir -p "$T/kit"
domain_xml vm1 5eed0000-0000-4000-8000-00000000fa17 "$T/kit" "$T/console.log" "$T/os.img" "$T/data.img" \
        >"$T/vm1.xml"
virsh -c "$LV_URI" define "$T/vm1.xml" >/dev/null
virsh -c "$LV_URI" dumpxml --inactive vm1 >"$T/before.xml"

in_progress=0
mid_rekey=0
# kill_rounds VERB [ARG]: ROUNDS runs of `vm VERB [ARG]` at 4 MiB/s, each killed
# after a random 0-3 s (a run that ends first is fine: the next one has nothing or
# less to do); the first one 0-0.4 s into its data pass. A shallow rekey has no
# data pass and takes a fraction of a second: its kills come 0-0.3 s in.
kill_rounds() {
        local verb=$1 arg=${2:-} i delay pid
        for i in $(seq 1 "$ROUNDS"); do
                delay=$((RANDOM % 3)).$(printf %02d $((RANDOM % 100)))
                [ "$verb" != rekey ] || [ -n "$arg" ] || delay=0.$(printf %02d $((RANDOM % 30)))
                "$VMCRYPT" vm "$verb" $arg "${V[@]}" --max-rate 4M --progress none vm1 >"$T/bg.out" 2>&1 &
                pid=$!
                # The first kill of each kind waits for the data pass, so that at
                # least one lands inside a job whatever the random delays are.
                # A shallow rekey's first kill waits until its target KEK is
                # recorded: it lands between the KEK and the last disk's re-wrap.
                if [ "$i" = 1 ] && [ "$verb" = rekey ] && [ -z "$arg" ]; then
                        for _ in $(seq 200); do
                                grep -q '"rekey":{' <<<"$(vmc vm show --connect "$LV_URI" --json vm1 2>/dev/null)" && break
                                sleep 0.02
                        done
                        delay=0
                elif [ "$i" = 1 ]; then
                        for _ in $(seq 100); do
                                grep -q InProgress <<<"$(vmc vm status --connect "$LV_URI" --json vm1 2>/dev/null)" && break
                                sleep 0.1
                        done
                        delay=0.$((RANDOM % 5))
                fi
                sleep "$delay"
                kill -KILL "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                vmc vm status --connect "$LV_URI" --json vm1 >"$T/st.json" || die "vm status failed after a kill"
                if grep -q 'InProgress' "$T/st.json"; then in_progress=$((in_progress + 1)); fi
                vmc vm show --connect "$LV_URI" --json vm1 >"$T/sh.json" || die "vm show failed after a kill"
                if [ "$verb" = rekey ] && [ "$(json_get "$T/sh.json" "d['rekey'] is not None")" = true ]; then
                        mid_rekey=$((mid_rekey + 1))
                fi
                echo "$verb $arg round $i: killed after ${delay}s: $(json_get "$T/st.json" \
                        "d['OsVolumeEncrypted'] + '/' + d['DataVolumesEncrypted']")"
        done
}

note "vm encrypt, killed $ROUNDS times, then run to the end"
kill_rounds encrypt
expect_rc 0 enc vmc vm encrypt "${V[@]}" --progress none vm1
vm_json() { vmc vm "$1" --connect "$LV_URI" --json vm1 >"$T/$1.json" || die "vm $1 failed"; }
vm_json status
assert_eq "$(json_get "$T/status.json" "d['OsVolumeEncrypted'] + '/' + d['DataVolumesEncrypted']")" \
        Encrypted/Encrypted "status after the kills and a final run"
vm_json show
assert_eq "$(json_get "$T/show.json" "len(set(k['kek'] for k in d['disks']))")" 1 "KEKs of the VM (one per VM)"
virsh -c "$LV_URI" dumpxml --inactive vm1 >"$T/dom.xml"
assert_eq "$(grep -c "<secret type='passphrase'" "$T/dom.xml")" 2 "disks wired in the domain XML"
expect_rc 0 unlock-os vmc disk unlock --providers "$P" "$T/os.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/os.img"
KEK=$(json_get "$T/show.json" "d['disks'][0]['kek']")

# after_rekey OLD-KEK: every disk under one new KEK, only its tokens on the disks,
# no rekey recorded, the disks open; sets KEK to the new one.
after_rekey() {
        local old=$1 f
        vm_json show
        assert_eq "$(json_get "$T/show.json" "len(set(k['kek'] for k in d['disks']))")" 1 "KEKs after vm rekey"
        KEK=$(json_get "$T/show.json" "d['disks'][0]['kek']")
        assert_ne "$KEK" "$old" "the VM's KEK after vm rekey"
        assert_eq "$(json_get "$T/show.json" "d['rekey']")" null "unfinished rekey recorded after the final run"
        for f in os data; do
                vmc disk status --json "$T/$f.img" >"$T/dst.json"
                assert_eq "$(json_get "$T/dst.json" "sorted(set(t.get('kek_id') for t in d['tokens']))")" \
                        "[\"$KEK\"]" "KEKs named by the tokens of $f.img (old: $old)"
                expect_rc 0 unlock-$f vmc disk unlock --providers "$P" "$T/$f.img" -- \
                        cryptsetup open --test-passphrase --key-file - "$T/$f.img"
        done
        virsh -c "$LV_URI" dumpxml --inactive vm1 >"$T/dom.xml"
        assert_eq "$(grep -c "<secret type='passphrase'" "$T/dom.xml")" 2 "disks wired after vm rekey"
}

note "vm rekey --deep, killed $ROUNDS times, then run to the end"
kill_rounds rekey --deep
expect_rc 0 deep vmc vm rekey "${V[@]}" --progress none vm1
after_rekey "$KEK"

note "vm rekey (shallow), killed $ROUNDS times, then run to the end"
kill_rounds rekey
expect_rc 0 rekey vmc vm rekey "${V[@]}" --progress none vm1
after_rekey "$KEK"

note "a rekey killed after its KEK is recorded, then vm decrypt: the record goes with the disks"
VMCRYPT_TEST_CRASH_POINT=vm-rekey-disk-done expect_rc 137 rekey-crash vmc vm rekey "${V[@]}" --progress none vm1
vm_json show
assert_eq "$(json_get "$T/show.json" "d['rekey'] is not None")" true "rekey recorded after a crash after the first disk"
assert_eq "$(json_get "$T/show.json" "len(set(k['kek'] for k in d['disks']))")" 2 \
        "KEKs of the disks after a crash after the first disk"

note "vm decrypt, killed $ROUNDS times, then run to the end"
kill_rounds decrypt
expect_rc 0 dec vmc vm decrypt "${V[@]}" --progress none vm1
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk after kills and vm decrypt"
vm_json show
assert_eq "$(json_get "$T/show.json" "d['rekey']")" null "unfinished rekey recorded after vm decrypt"
assert_eq "$(sha256_range "$T/data.img")" "$DATA_SHA" "data disk after kills and vm decrypt"
# vm rekey records its target KEK in <metadata> and removes it again; libvirt
# keeps the then empty <metadata/>.
virsh -c "$LV_URI" dumpxml --inactive vm1 | grep -v '^ *<metadata/>$' >"$T/after.xml"
diff -u "$T/before.xml" "$T/after.xml" >"$T/xml.diff" || die "domain XML differs after vm decrypt: $(cat "$T/xml.diff")"
note "$in_progress of $((4 * ROUNDS)) kills left a job in progress; $mid_rekey of $((2 * ROUNDS)) rekey kills an unfinished rekey"
[ "$mid_rekey" -ge 2 ] || die "only $mid_rekey rekey kills landed inside a rekey"
[ "$in_progress" -ge 3 ] || die "only $in_progress kills landed in a job: the delays miss the data pass"
