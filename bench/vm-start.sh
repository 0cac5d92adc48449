#!/usr/bin/env bash
# What key release adds to a VM start: `vmcrypt vm start` of a VM whose two disks
# vmcrypt encrypted (each disk's secret unwrapped by vmcrypt-kms over mutual TLS,
# put into an ephemeral private libvirt secret, the domain started, the secrets
# undefined) against `virsh start` of the same VM unencrypted (the same guest kit
# and disk contents, a second domain over plain copies of the images), in one run,
# alternating, each timed from the command's start until it returns (libvirt
# returns when QEMU runs the domain), then the domain is destroyed. A private
# libvirtd (tests/interop/vm-lib.sh) and QEMU under TCG.
#
# Prints each pair, the median of both, what key release adds (the median of the
# pairs' differences, in ms: a pair shares the machine's load of its moment), the
# ratio of the medians, and the load average (the machine is shared).
#
# Usage: bench/vm-start.sh
#   RUNS=9          pairs
#   BUILD=DIR       vmcrypt build dir (default build/)
#   TEST_TMPDIR=DIR where the images go (default /var/tmp)
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
RUNS=${RUNS:-9}

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
libvirtd_start
guest_kit "$T/kit"
make_random_image "$T/os.img" 16M
make_random_image "$T/data.img" 8M
cp "$T/os.img" "$T/plain-os.img"
cp "$T/data.img" "$T/plain-data.img"
domain_xml enc 5eed0000-0000-4000-8000-0000000be4c1 "$T/kit" "$T/enc.log" "$T/os.img" "$T/data.img" >"$T/enc.xml"
domain_xml plain 5eed0000-0000-4000-8000-0000000be4c2 "$T/kit" "$T/plain.log" "$T/plain-os.img" \
        "$T/plain-data.img" >"$T/plain.xml"
virsh -c "$LV_URI" define "$T/enc.xml" >/dev/null
virsh -c "$LV_URI" define "$T/plain.xml" >/dev/null
vmc vm encrypt --connect "$LV_URI" --providers "$P" --provider kms --progress none enc >/dev/null ||
        die "vm encrypt failed"

# destroy NAME: stop the domain (the guest may have powered off by itself)
destroy() { virsh -c "$LV_URI" destroy "$1" >/dev/null 2>&1 || true; }

echo "two disks (16 MiB + 8 MiB), QEMU TCG, $(nproc) CPUs; load before: $(load)"
: >"$T/vm.ms"
: >"$T/virsh.ms"
: >"$T/diff.ms"
for r in $(seq 1 "$RUNS"); do
        t=$(date +%s%N)
        "$VMCRYPT" vm start --connect "$LV_URI" --providers "$P" enc >/dev/null || die "vmcrypt vm start failed"
        a=$(ms "$t")
        destroy enc
        t=$(date +%s%N)
        virsh -c "$LV_URI" start plain >/dev/null || die "virsh start failed"
        b=$(ms "$t")
        destroy plain
        echo "$a" >>"$T/vm.ms"
        echo "$b" >>"$T/virsh.ms"
        echo $((a - b)) >>"$T/diff.ms"
        printf 'run %d: vmcrypt vm start (encrypted) %5d ms   virsh start (plain) %5d ms   load %s\n' "$r" "$a" "$b" \
                "$(load)"
done
a=$(median <"$T/vm.ms")
b=$(median <"$T/virsh.ms")
d=$(median <"$T/diff.ms")
echo "median of $RUNS: vmcrypt vm start $a ms, virsh start $b ms; key release adds $d ms (median of the" \
        "pairs' differences), ratio $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", a / (b ? b : 1)}');" \
        "load after: $(load)"
