#!/usr/bin/env bash
# What a vTPM adds to starting an encrypted VM: `vmcrypt vm start` of the same q35
# domain (one LUKS1 disk, keys in vmcrypt-kms, real libvirtd + QEMU under TCG)
# without and with the vTPM of `vmcrypt vm add-vtpm`. With it, start also unwraps
# the state secret at the KMS, defines and undefines one more libvirt secret, and
# libvirt starts swtpm (the first start also runs swtpm_setup to create the
# state). The time is the command's wall time, until libvirt has started QEMU;
# each guest powers off before the next start.
#
# Prints: add-vtpm time; per mode the median of RUNS starts (the first start with
# the vTPM apart); the difference in ms; the load average before and after.
#
# Usage: bench/vm-vtpm-start.sh
#   RUNS=5
#   BUILD=DIR       vmcrypt build dir (default build/)
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../tests/interop/keys-lib.sh"
. "$(dirname "$0")/../tests/interop/vm-lib.sh"
require_cmd virsh meson ninja

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" >/dev/null
ninja -C "$BUILD" >/dev/null
VMCRYPT=$BUILD/src/cli/vmcrypt
VMCRYPT_KMS=$BUILD/src/kms/vmcrypt-kms
export VMCRYPT VMCRYPT_KMS
require_vm_peers
require_keys_cli
RUNS=${RUNS:-5}


kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
libvirtd_start
guest_kit "$T/kit"
V=(--connect "$LV_URI")
make_random_image "$T/os.img" 8M
domain_xml b1 5eed0000-0000-4000-8000-0000000b0001 "$T/kit" "$T/console.log" "$T/os.img" |
        sed "s/machine='pc'/machine='q35'/" >"$T/b1.xml"
virsh -c "$LV_URI" define "$T/b1.xml" >/dev/null
"$VMCRYPT" vm encrypt "${V[@]}" --providers "$P" --provider kms --progress none b1 >/dev/null

# start_once: wall ms of vm start, then wait for the guest to power off.
start_once() {
        local t
        rm -f "$T/console.log"
        t=$(date +%s%N)
        "$VMCRYPT" vm start "${V[@]}" --providers "$P" b1 >/dev/null || die "vm start failed"
        ms "$t"
        for _ in $(seq 600); do
                [ "$(virsh -c "$LV_URI" domstate b1 | sed -n 1p)" = "shut off" ] && return 0
                sleep 0.1
        done
        die "the guest did not power off"
}

echo "$(nproc) CPUs; load before: $(load)"
plain=$(for _ in $(seq "$RUNS"); do start_once; done | median)
t=$(date +%s%N)
"$VMCRYPT" vm add-vtpm "${V[@]}" --providers "$P" b1 >/dev/null
add=$(ms "$t")
first=$(start_once)
vtpm=$(for _ in $(seq "$RUNS"); do start_once; done | median)
echo "add-vtpm:                          $add ms"
echo "vm start, no vTPM (median of $RUNS):   $plain ms"
echo "vm start, first with vTPM:         $first ms (swtpm_setup creates the state)"
echo "vm start, with vTPM (median of $RUNS): $vtpm ms"
echo "the vTPM adds:                     $((vtpm - plain)) ms ($(awk -v a="$vtpm" -v b="$plain" 'BEGIN {printf "%.2fx", a / b}'))"
echo "load after: $(load)"
