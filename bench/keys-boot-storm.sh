#!/usr/bin/env bash
# Boot storm: unlock N KMS-bound disks (default 1000) as fast as possible, with
# vmcrypt-kms on this host, and compare in the same run with cryptsetup's default
# Argon2id keyslot. The disks are LUKS2 images holding only their metadata (sparse
# files): each has its own unlock secret in a PBKDF2 keyslot and a vmcrypt token
# wrapped by a KEK on the KMS (one KEK per VM of 4 disks, as vSphere keeps one KEK
# per VM). An unlock is the full boot path without the data: read the token, KMS
# Decrypt, and prove the secret opens the keyslot.
#
# Prints, for the same machine and moment:
#   - vmcrypt disk unlock --check --jobs J over all N disks: unlocks/s (goal >= 500)
#   - vmcrypt disk unlock IMG -- cryptsetup open --test-passphrase --key-file - IMG,
#     one pair of processes per disk (SAMPLE_PIPE disks): unlocks/s
#   - cryptsetup open --test-passphrase on headers with cryptsetup's default Argon2id
#     keyslot (SAMPLES headers, timed and extrapolated to N): unlocks/s
#
# Usage: bench/keys-boot-storm.sh
#   N=1000  JOBS=4  SAMPLES=5  SAMPLE_PIPE=50
#   BUILD=DIR       vmcrypt build dir (default build/, configured as a release build)
#   TEST_TMPDIR=DIR where the images go (default /var/tmp)
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/../tests/interop/keys-lib.sh"
require_cmd cryptsetup meson ninja openssl /usr/bin/time

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" >/dev/null
VMCRYPT=$BUILD/src/cli/vmcrypt
VMCRYPT_KMS=$BUILD/src/kms/vmcrypt-kms
require_keys_cli

N=${N:-1000}
JOBS=${JOBS:-4}
SAMPLES=${SAMPLES:-5}
SAMPLE_PIPE=${SAMPLE_PIPE:-50}
now() { date +%s.%N; }
rate() { "$PY" -c "import sys; n, t = float(sys.argv[1]), float(sys.argv[2]); print('%.0f' % (n / t))" "$1" "$2"; }
secs() { "$PY" -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

kms_vmcrypt_start "$T/kms" host1
P=$T/providers.json
write_providers "$P" kms "$T/kms" host1 "127.0.0.1:$KMS_PORT"
openssl rand -hex 32 | tr -d '\n' >"$T/pass"
mkdir -p "$T/d"

note "setting up $N KMS-bound disks (not timed)"
t0=$(now)
# One KEK per VM of four disks.
for v in $(seq 0 $(( (N + 3) / 4 - 1 ))); do
        vmc provider create-kek --providers "$P" --vm-name "vm$v" kms
done >"$T/keks"
mkdisk() { # index kek
        local img=$T/d/disk$1.img
        truncate -s 17M "$img"
        cryptsetup -q luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --key-file "$T/pass" "$img" &&
                "$VMCRYPT" disk bind --providers "$P" --kek "$2" --key-file "$T/pass" "$img" >/dev/null &&
                # Only the KMS-bound secret remains: drop the setup passphrase's keyslot.
                cryptsetup -q luksRemoveKey --key-file "$T/pass" "$img"
}
export -f mkdisk
export T P VMCRYPT
paste <(seq 0 $((N - 1))) <(awk '{for (i = 0; i < 4; i++) print}' "$T/keks" | head -n "$N") |
        xargs -P 8 -L 1 bash -c 'mkdisk "$0" "$1"' || die "setting up the disks failed"
ls "$T"/d/*.img >"$T/list"
[ "$(wc -l <"$T/list")" = "$N" ] || die "expected $N disks, made $(wc -l <"$T/list")"
note "setup took $(secs "$t0" "$(now)") s"

note "vmcrypt disk unlock --check --jobs $JOBS over $N disks"
kms_cpu() { awk '{print $14 + $15}' "/proc/$KMS_PID/stat"; } # clock ticks
k0=$(kms_cpu)
t0=$(now)
xargs -a "$T/list" /usr/bin/time -f "%U %S" -o "$T/cpu" \
        "$VMCRYPT" disk unlock --providers "$P" --check --quiet --jobs "$JOBS" || die "some disks did not unlock"
t1=$(now)
k1=$(kms_cpu)
storm_s=$(secs "$t0" "$t1")
storm_rate=$(rate "$N" "$storm_s")
# CPU per unlock (vmcrypt's processes and the KMS), and what it allows on idle CPUs:
# this machine is often shared, and wall-clock rates then measure the neighbours.
read -r cu cs <"$T/cpu"
cpu_ms=$("$PY" -c "import sys; print('%.2f' % ((float(sys.argv[1]) + float(sys.argv[2])) * 1000 / float(sys.argv[3])))" "$cu" "$cs" "$N")
kms_ms=$("$PY" -c "import sys, os; print('%.2f' % ((int(sys.argv[2]) - int(sys.argv[1])) * 1000 / os.sysconf('SC_CLK_TCK') / float(sys.argv[3])))" "$k0" "$k1" "$N")
ceiling=$("$PY" -c "import sys, os; print('%.0f' % (os.cpu_count() * 1000 / (float(sys.argv[1]) + float(sys.argv[2]))))" "$cpu_ms" "$kms_ms")

note "vmcrypt disk unlock -- cryptsetup open --test-passphrase, $SAMPLE_PIPE disks one by one"
head -n "$SAMPLE_PIPE" "$T/list" >"$T/sample"
t0=$(now)
while read -r img; do
        "$VMCRYPT" disk unlock --providers "$P" "$img" -- cryptsetup open --test-passphrase --key-file - "$img" ||
                die "cryptsetup did not accept the secret released for $img"
done <"$T/sample"
pipe_s=$(secs "$t0" "$(now)")
pipe_rate=$(rate "$SAMPLE_PIPE" "$pipe_s")

note "cryptsetup default Argon2id keyslot: formatting $SAMPLES headers (not timed)"
for i in $(seq 1 "$SAMPLES"); do
        truncate -s 17M "$T/argon$i.img"
        cryptsetup -q luksFormat --type luks2 --key-file "$T/pass" "$T/argon$i.img" || die "luksFormat failed"
done
kdf=$(cryptsetup luksDump --dump-json-metadata "$T/argon1.img" | "$PY" -c '
import json, sys; k = json.load(sys.stdin)["keyslots"]["0"]["kdf"]
print("%s, time %s, memory %s KiB, %s threads" % (k["type"], k.get("time"), k.get("memory"), k.get("cpus")))')
t0=$(now)
for i in $(seq 1 "$SAMPLES"); do
        cryptsetup open --test-passphrase --key-file "$T/pass" "$T/argon$i.img" || die "cryptsetup open failed"
done
argon_s=$(secs "$t0" "$(now)")
argon_rate=$("$PY" -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$SAMPLES" "$argon_s")
argon_n=$("$PY" -c "import sys; print('%.0f' % (float(sys.argv[2]) / float(sys.argv[1]) * float(sys.argv[3])))" \
        "$SAMPLES" "$argon_s" "$N")

cpus=$(nproc)
cat <<REPORT

Boot storm: $N KMS-bound LUKS2 disks, vmcrypt-kms on the same host ($cpus CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))
  vmcrypt disk unlock --check --jobs $JOBS     $N unlocks in $storm_s s = $storm_rate unlocks/s   (goal >= 500)
      CPU per unlock: vmcrypt $cpu_ms ms + vmcrypt-kms $kms_ms ms -> at most ~$ceiling unlocks/s on $cpus idle CPUs
  vmcrypt disk unlock -- cryptsetup open       $SAMPLE_PIPE unlocks in $pipe_s s = $pipe_rate unlocks/s (a process pair per disk)
  cryptsetup open, default keyslot ($kdf)
                                               $SAMPLES unlocks in $argon_s s = $argon_rate unlocks/s -> $N disks in ~$argon_n s
REPORT
keys_done
