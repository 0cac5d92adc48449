#!/usr/bin/env bash
# vm status at host scale: `vmcrypt vm status --json` over N domains (default 200,
# two disks each, every kind of disk state: plain, LUKS1, interrupted encrypt and
# decrypt jobs, a mismatch, qcow2/network/cdrom disks) through libvirt's test
# driver, so the time is vmcrypt's own: libvirt's API, the domain XML, and
# reading every disk's header and job area. Anchor in the same run: `virsh list
# --all` + `virsh dumpxml` of every domain (what a script that only asks libvirt
# costs, without looking at a single disk).
#
# Prints per run: total seconds, ms per VM, and the load average before and after
# (the machine is shared: a high load explains a slow run).
#
# Usage: bench/vm-status.sh
#   N=200  RUNS=5
#   BUILD=DIR       vmcrypt build dir (default build/)
#   TEST_TMPDIR=DIR where the images go (default /var/tmp)
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../tests/interop/vm-lib.sh"
require_cmd virsh meson ninja

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" >/dev/null
ninja -C "$BUILD" >/dev/null
VMCRYPT=$BUILD/src/cli/vmcrypt
require_vmcrypt

N=${N:-200}
RUNS=${RUNS:-5}
make_inventory "$T/inv" "$N"
URI="test://$T/inv/node.xml"

echo "N=$N domains, $(grep -c '<disk ' "$T/inv/node.xml") disks; $(nproc) CPUs; load before: $(load)"
best=""
for r in $(seq 1 "$RUNS"); do
        t=$(date +%s%N)
        "$VMCRYPT" vm status --connect "$URI" --json >"$T/status.jsonl"
        m=$(ms "$t")
        [ "$(wc -l <"$T/status.jsonl")" = "$N" ] || die "vm status printed $(wc -l <"$T/status.jsonl") lines, not $N"
        printf 'run %d: vm status --json  %6d ms  %6.2f ms/VM  load %s\n' "$r" "$m" \
                "$(echo "$m $N" | awk '{print $1 / $2}')" "$(load)"
        if [ -z "$best" ] || [ "$m" -lt "$best" ]; then best=$m; fi
done
# The anchor: the test driver's own cost of listing and describing every domain,
# in one virsh process (a shell loop of virsh calls would time process starts).
t=$(date +%s%N)
{
        echo "list --all --name"
        for i in $(seq 0 $((N - 1))); do echo "dumpxml vm-$i"; done
} | virsh -c "$URI" >/dev/null
anchor=$(ms "$t")
echo "anchor: virsh list + dumpxml of all $N domains: $anchor ms"
echo "best vm status --json: $best ms, $(echo "$best $N" | awk '{printf "%.2f", $1 / $2}') ms/VM;" \
        "$(echo "$best $anchor" | awk '{printf "%.1f", $1 / ($2 ? $2 : 1)}')x the libvirt-only anchor; load after: $(load)"
