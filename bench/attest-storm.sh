#!/usr/bin/env bash
# Attested unlocks against plain unlocks, in the same run: N LUKS2 disks (metadata
# only, sparse) bound to a kmip provider, and N bound to a trusted provider of the
# same vmcrypt-kms, whose host TPM is an swtpm. An unlock is the full boot path
# without the data: read the token, KMS Decrypt (for the trusted provider: answered
# Attestation Required, then a quote, a certification and the check of both on the
# KMS, the secret wrapped to a TPM key and decrypted inside the TPM), and prove the
# secret opens the keyslot.
#
# Prints unlocks/s of both, their ratio, the KMS's CPU per unlock (the cost of quote
# verification), and the load average, for:
#   - one process unlocking all N disks (vmcrypt disk unlock --check over the list):
#     one TPM session, the release key made once and kept;
#   - one process per disk (SAMPLE disks): a boot storm as separate units would run
#     it, each with a new TPM session, loading the release key kept in bk_cache.
# The TPM is one device: its work is serial whatever the number of processes, so
# the one-process runs use --jobs 1 for both providers.
#
# Usage: bench/attest-storm.sh
#   N=200  SAMPLE=20
#   BUILD=DIR       vmcrypt build dir (default build/, configured as a release build)
#   TEST_TMPDIR=DIR where the images go (default /var/tmp)
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/../tests/interop/keys-lib.sh"
require_cmd cryptsetup meson ninja openssl swtpm

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" >/dev/null
VMCRYPT=$BUILD/src/cli/vmcrypt
VMCRYPT_KMS=$BUILD/src/kms/vmcrypt-kms
require_keys_cli

N=${N:-200}
SAMPLE=${SAMPLE:-20}
now() { date +%s.%N; }
rate() { "$PY" -c "import sys; n, t = float(sys.argv[1]), float(sys.argv[2]); print('%.1f' % (n / t))" "$1" "$2"; }
secs() { "$PY" -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
ratio() { "$PY" -c "import sys; print('%.1f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

# The host TPM: swtpm on PORT (commands) and PORT+1 (control), as its TCTI expects.
TPMPORT=$("$PY" -c '
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass')
mkdir -p "$T/tpm"
swtpm socket --tpm2 --tpmstate dir="$T/tpm" --server type=tcp,port="$TPMPORT",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((TPMPORT + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
track_pid $!
wait_port "$TPMPORT" 10 || die "swtpm did not start"

kms_vmcrypt_start "$T/kms" host1
mkdir -m 700 "$T/bk"
P=$T/providers.json
cat >"$P" <<JSON
{ "providers": {
    "kms": { "type": "kmip", "endpoints": [ "127.0.0.1:$KMS_PORT" ], "wrap": "kmip-encrypt",
             "ca": "$T/kms/ca.crt", "cert": "$T/kms/client-host1.crt", "key": "$T/kms/client-host1.key" },
    "tkp": { "type": "trusted", "endpoints": [ "127.0.0.1:$KMS_PORT" ],
             "ca": "$T/kms/ca.crt", "cert": "$T/kms/client-host1.crt", "key": "$T/kms/client-host1.key",
             "tcti": "swtpm:host=127.0.0.1,port=$TPMPORT", "pcrs": "0,7,16", "bk_cache": "$T/bk" } } }
JSON
kadm() { "$VMCRYPT_KMS" "$@" --config "$T/kms/kms.conf"; }
vmc host enroll --providers "$P" --provider tkp >"$T/enroll" || die "enrolment failed"
HID=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/enroll")
kadm policy capture --host "$HID" --pcrs 0,7,16 >/dev/null || die "policy capture failed"
kadm host approve "$HID" >/dev/null || die "approve failed"

openssl rand -hex 32 | tr -d '\n' >"$T/pass"
note "setting up 2 x $N disks (not timed)"
for kind in kms tkp; do
        mkdir -p "$T/$kind"
        for v in $(seq 0 $(( (N + 3) / 4 - 1 ))); do
                vmc provider create-kek --providers "$P" --vm-name "vm$v" "$kind"
        done >"$T/keks-$kind" || die "creating KEKs on $kind failed"
done
mkdisk() { # kind index kek
        local img=$T/$1/disk$2.img
        truncate -s 17M "$img"
        cryptsetup -q luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --key-file "$T/pass" "$img" &&
                "$VMCRYPT" disk bind --providers "$P" --provider "$1" --kek "$3" --key-file "$T/pass" "$img" >/dev/null &&
                cryptsetup -q luksRemoveKey --key-file "$T/pass" "$img"
}
export -f mkdisk
export T P VMCRYPT
for kind in kms tkp; do
        # The trusted binds attest against the one TPM: one at a time.
        jobs=8
        [ "$kind" = tkp ] && jobs=1
        paste <(yes "$kind" | head -n "$N") <(seq 0 $((N - 1))) \
                <(awk '{for (i = 0; i < 4; i++) print}' "$T/keks-$kind" | head -n "$N") |
                xargs -P "$jobs" -L 1 bash -c 'mkdisk "$0" "$1" "$2"' || die "setting up the $kind disks failed"
        ls "$T/$kind"/*.img >"$T/list-$kind"
done

kms_cpu() { awk '{print $14 + $15}' "/proc/$KMS_PID/stat"; } # clock ticks
kms_ms() { "$PY" -c "import sys, os; print('%.2f' % ((int(sys.argv[2]) - int(sys.argv[1])) * 1000 / os.sysconf('SC_CLK_TCK') / float(sys.argv[3])))" "$@"; }
declare -A one one_kms per
for kind in kms tkp; do
        note "$kind: one process, $N disks"
        k0=$(kms_cpu)
        t0=$(now)
        xargs -a "$T/list-$kind" "$VMCRYPT" disk unlock --providers "$P" --check --quiet --jobs 1 ||
                die "some $kind disks did not unlock"
        t1=$(now)
        one[$kind]=$(rate "$N" "$(secs "$t0" "$t1")")
        one_kms[$kind]=$(kms_ms "$k0" "$(kms_cpu)" "$N")
        note "$kind: one process per disk, $SAMPLE disks"
        t0=$(now)
        head -n "$SAMPLE" "$T/list-$kind" | while read -r img; do
                "$VMCRYPT" disk unlock --providers "$P" "$img" -- cryptsetup open --test-passphrase --key-file - "$img" ||
                        die "cryptsetup did not accept the secret released for $img"
        done
        per[$kind]=$(rate "$SAMPLE" "$(secs "$t0" "$(now)")")
done

cat <<REPORT

Attested vs plain unlocks, vmcrypt-kms and one swtpm on the same host ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))
                                   plain (kmip)        attested (trusted)    plain/attested
  one process, $N disks           ${one[kms]} unlocks/s     ${one[tkp]} unlocks/s        $(ratio "${one[kms]}" "${one[tkp]}")x
      vmcrypt-kms CPU per unlock   ${one_kms[kms]} ms             ${one_kms[tkp]} ms
  one process per disk ($SAMPLE)    ${per[kms]} unlocks/s     ${per[tkp]} unlocks/s        $(ratio "${per[kms]}" "${per[tkp]}")x
REPORT
