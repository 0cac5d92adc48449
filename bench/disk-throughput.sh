#!/usr/bin/env bash
# In-place encryption and decryption throughput of `vmcrypt disk` against
# `cryptsetup reencrypt` (offline, on the same file, same header mode) and against a
# plain copy of the same bytes (cp + sync: the I/O floor), on a 2 GiB image of random
# data on the work disk. Every run starts with cold caches. Both tools use PBKDF2 with
# 1000 iterations so that only the data pass counts. Prints MiB/s for each run and the
# ratios vmcrypt/cryptsetup (goal >= 2) and vmcrypt/copy (goal >= 0.8).
#
# A third anchor, the disk ceiling, is what this disk allows any in-place pass: dd
# reading the image (O_DIRECT) while another dd overwrites a copy of it (O_DIRECT),
# at the same time. Every in-place tool must read and write each byte once, so
# ceiling/cryptsetup is the highest ratio any tool could reach here, and
# vmcrypt/ceiling says how much of the disk vmcrypt uses (goal >= 0.9). A virtual
# disk's speed drifts by a third within minutes, so the ceiling is measured right
# before each vmcrypt pass, each pass is compared with its own ceiling, and the
# median of those pairs' ratios over the rounds is the figure (min and max beside
# it): one lucky or unlucky run on either side does not move it.
#
# Usage: bench/disk-throughput.sh          (as root: it drops the page cache)
#   SIZE=2G             image size
#   ROUNDS=1            repeat everything and keep each run's best time (the machine
#                       may be shared: the best of a few runs is the least disturbed)
#   TEST_TMPDIR=DIR     where the images go (default /var/tmp; must be the work disk)
#   BUILD=DIR           vmcrypt build dir (default build/, configured as a release build)
. "$(dirname "$0")/../tests/lib.sh"
require_cmd cryptsetup meson ninja openssl numfmt
[ -w /proc/sys/vm/drop_caches ] || die "cannot drop the page cache: run as root"

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
elif ! meson introspect "$BUILD" --buildoptions | grep -q '"name": "buildtype", "value": "release"'; then
        meson configure "$BUILD" -Dbuildtype=release >/dev/null
fi
ninja -C "$BUILD" >/dev/null
VMCRYPT=$BUILD/src/cli/vmcrypt
require_vmcrypt

SIZE=${SIZE:-2G}
BYTES=$(numfmt --from=iec "$SIZE")
MIB=$((BYTES >> 20))
W=$T # removed at exit by tests/lib.sh
CS=(--batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000)

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# timed NAME cmd...: runs cmd (then sync) from a cold cache; SECS[NAME] keeps the best
# time over the rounds.
declare -A SECS LAST PAIRS
# ceiling JOB: the disk ceiling, measured for the vmcrypt pass that follows.
ceiling() {
        cp "$W/orig" "$W/ceil"
        timed "ceiling-$1" bash -c 'dd if="$1" of=/dev/null bs=4M iflag=direct status=none &
                dd if=/dev/zero of="$2" bs=4M count="$3" oflag=direct conv=notrunc status=none; wait' \
                _ "$W/orig" "$W/ceil" "$((MIB / 4))"
        rm -f "$W/ceil"
}
timed() {
        local name=$1 t0 t1 secs
        shift
        drop_caches
        t0=$(date +%s.%N)
        "$@" >"$W/$name.log" 2>&1 || die "$name failed: $(tail -n 5 "$W/$name.log")"
        sync
        t1=$(date +%s.%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        printf '  %-34s %6.2f s  %7.0f MiB/s\n' "$name" "$secs" "$(rate "$secs")"
        if [ -z "${SECS[$name]:-}" ] || awk -v a="$secs" -v b="${SECS[$name]}" 'BEGIN { exit !(a < b) }'; then
                SECS[$name]=$secs
        fi
        LAST[$name]=$secs
}
# pair JOB: the ceiling-to-vmcrypt ratio of this round's JOB (time over time).
pair() { PAIRS[$1]+="$(awk -v c="${LAST[ceiling-$1]}" -v v="${LAST[vmcrypt-$1]}" 'BEGIN { print c / v }') "; }
# pairs JOB: "median (min-max)" of JOB's pair ratios.
pairs() {
        tr ' ' '\n' <<<"${PAIRS[$1]}" | sed '/^$/d' | sort -g |
                awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
                        printf "%.2fx (%.2f-%.2f)", m, a[1], a[NR] }'
}
rate() { awk -v m="$MIB" -v s="$1" 'BEGIN { print m / s }'; }
# ratio A B: how many times faster A is than B (same bytes, so the inverse time ratio).
ratio() { awk -v a="${SECS[$1]}" -v b="${SECS[$2]}" 'BEGIN { print b / a }'; }

echo "vmcrypt $("$VMCRYPT" --version | cut -d' ' -f2), cryptsetup $(cryptsetup --version | cut -d' ' -f2), $(nproc) CPUs, $SIZE image in $W"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
make_random_image "$W/orig" "$SIZE"
ORIG_SHA=$(sha256_range "$W/orig")
make_text_key "$W/k-cs"

for ((round = 1; round <= ${ROUNDS:-1}; round++)); do
rm -f "$W"/v* "$W"/c*
echo "round $round: copy (I/O floor)"
timed copy cp "$W/orig" "$W/copy"
rm -f "$W/copy"

echo "encrypt, header in front (vmcrypt shift vs cryptsetup --reduce-device-size 32M)"
cp "$W/orig" "$W/v"
ceiling encrypt-shift
timed vmcrypt-encrypt-shift "$VMCRYPT" disk encrypt --new-key-file "$W/v.key" --progress none "$W/v"
pair encrypt-shift
cp "$W/orig" "$W/c"
timed cryptsetup-encrypt-shift cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 32M \
        --key-file "$W/k-cs" "${CS[@]}" "$W/c"

echo "decrypt, header in front"
ceiling decrypt-shift
timed vmcrypt-decrypt-shift "$VMCRYPT" disk decrypt --key-file "$W/v.key" --progress none "$W/v"
pair decrypt-shift
timed cryptsetup-decrypt-shift cryptsetup reencrypt --decrypt --force-offline-reencrypt \
        --header "$W/c.newhdr" --key-file "$W/k-cs" "${CS[@]}" "$W/c"
[ "$(sha256_range "$W/v")" = "$ORIG_SHA" ] || die "vmcrypt's round trip did not give back the original bytes"
rm -f "$W/v" "$W/c" "$W/c.newhdr"

echo "encrypt, detached header"
cp "$W/orig" "$W/v"
ceiling encrypt-detached
timed vmcrypt-encrypt-detached "$VMCRYPT" disk encrypt --header "$W/v.hdr" --new-key-file "$W/vd.key" \
        --progress none "$W/v"
pair encrypt-detached
cp "$W/orig" "$W/c"
timed cryptsetup-encrypt-detached cryptsetup reencrypt --encrypt --type luks2 --header "$W/c.hdr" \
        --key-file "$W/k-cs" "${CS[@]}" "$W/c"

echo "decrypt, detached header"
ceiling decrypt-detached
timed vmcrypt-decrypt-detached "$VMCRYPT" disk decrypt --header "$W/v.hdr" --key-file "$W/vd.key" \
        --progress none "$W/v"
pair decrypt-detached
timed cryptsetup-decrypt-detached cryptsetup reencrypt --decrypt --force-offline-reencrypt \
        --header "$W/c.hdr" --key-file "$W/k-cs" "${CS[@]}" "$W/c"
[ "$(sha256_range "$W/v")" = "$ORIG_SHA" ] || die "vmcrypt's detached round trip did not give back the original bytes"
done

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "best of ${ROUNDS:-1} round(s), MiB/s:"
for name in copy ceiling-{en,de}crypt-{shift,detached} vmcrypt-{en,de}crypt-{shift,detached} \
        cryptsetup-{en,de}crypt-{shift,detached}; do
        printf '  %-34s %7.0f\n' "$name" "$(rate "${SECS[$name]}")"
done
printf '%-26s %13s %8s %22s %22s\n' "speed ratio" "vs cryptsetup" "vs copy" "vs ceiling (pairs)" "ceiling vs cryptsetup"
for job in encrypt-shift decrypt-shift encrypt-detached decrypt-detached; do
        printf '%-26s %12.2fx %7.2fx %22s %21.2fx\n' "vmcrypt $job" \
                "$(ratio "vmcrypt-$job" "cryptsetup-$job")" "$(ratio "vmcrypt-$job" copy)" \
                "$(pairs "$job")" "$(ratio "ceiling-$job" "cryptsetup-$job")"
done
echo "goals: >= 2x cryptsetup, >= 0.8x copy, >= 0.9x the ceiling measured before the pass (median of the"
echo "rounds' pairs); the other ratios take each command's best time over the rounds"
echo "(no tool can beat cryptsetup by more than the ceiling allows)"
