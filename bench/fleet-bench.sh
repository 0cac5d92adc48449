#!/usr/bin/env bash
# Fleet simulation: vmcrypt-manager (SQLite) and 4 vmcrypt-agents on this machine,
# 200 VMs (libvirt's test driver, 50 per agent, each with an OS and a data disk of
# DISK_SIZE in real image files, keys from each host's own native key provider).
# Measures the status API (GET /vms/{name}) with bench/fleet-load: requests/s and
# p50/p99 latency with the fleet idle, then again while all 200 VMs are encrypted
# through the manager, and the time to encrypt them all.
# Usage: bench/fleet-bench.sh [BUILD_DIR]   (default build)
#   CONNS=8 (load connections), IDLE_SECONDS=5, DISK_SIZE=2M, VMS_PER_AGENT=50
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
CONNS=${CONNS:-8}
IDLE_SECONDS=${IDLE_SECONDS:-5}
DISK_SIZE=${DISK_SIZE:-2M}
PER=${VMS_PER_AGENT:-50}
AGENTS=4
N=$((AGENTS * PER))
ninja -C "$B" src/manager/vmcrypt-manager src/agent/vmcrypt-agent src/cli/vmcrypt bench/fleet-load >/dev/null
PY=/usr/bin/python3
VMC=$PWD/$B/src/cli/vmcrypt

T=$(mktemp -d /var/tmp/fleet-bench-XXXXXX)
PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$T"
}
trap cleanup EXIT

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
M=$T/m
args=()
for i in $(seq $AGENTS); do args+=(--agent "h$i"); done
"$B/src/manager/vmcrypt-manager" init "$M" "${args[@]}" --listen "127.0.0.1:$PORT" >/dev/null
"$B/src/manager/vmcrypt-manager" serve --config "$M/manager.conf" --log-level warning 2>"$T/manager.log" &
PIDS+=($!)

echo "== $N VMs over $AGENTS agents, disks of $DISK_SIZE"
for i in $(seq $AGENTS); do
        h=$T/h$i
        mkdir -p "$h/img"
        cat >"$h/providers.json" <<JSON
{ "default": "local", "providers": { "local": { "type": "native", "state_dir": "$h/native", "key_file": "$h/native.key" } } }
JSON
        "$VMC" provider init --providers "$h/providers.json" local >/dev/null
        printf 'bench-backup-passphrase' >"$h/bp"
        "$VMC" provider backup --providers "$h/providers.json" --output "$h/backup.json" --passphrase-file "$h/bp" \
                local >/dev/null
        {
                echo "<node>"
                for k in $(seq 0 $((PER - 1))); do
                        n=$(((i - 1) * PER + k))
                        truncate -s "$DISK_SIZE" "$h/img/$n-os.img" "$h/img/$n-data.img"
                        echo "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
                        echo "<name>vm-$n</name><uuid>00000000-0000-4000-8000-$(printf %012d "$n")</uuid>"
                        echo "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>"
                        for d in os data; do
                                t=vda; [ $d = data ] && t=vdb
                                echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$h/img/$n-$d.img'/><target dev='$t' bus='virtio'/></disk>"
                        done
                        echo "</devices><test:runstate>5</test:runstate></domain>"
                done
                echo "</node>"
        } >"$h/node.xml"
        sed "s#= client-#= $M/client-#; s#^ca = .*#ca = $M/ca.crt#" "$M/h$i.conf" >"$h/agent.conf"
        printf 'state-dir = %s\nlibvirt = test://%s\nproviders = %s\npoll-seconds = 1\n' "$h/state" \
                "$h/node.xml" "$h/providers.json" >>"$h/agent.conf"
        "$B/src/agent/vmcrypt-agent" --config "$h/agent.conf" --log-level warning 2>"$h/agent.log" &
        PIDS+=($!)
done
MC=(--manager-config "$M/admin.conf")
for _ in $(seq 300); do
        c=$("$VMC" host list --json "${MC[@]}" 2>/dev/null | $PY -c 'import json,sys; print(sum(h["vms"] for h in json.load(sys.stdin)))' 2>/dev/null || echo 0)
        [ "$c" = "$N" ] && break
        sleep 0.2
done
[ "$c" = "$N" ] || { echo "only $c of $N VMs reported"; exit 1; }
LOAD=("$B/bench/fleet-load" --port "$PORT" --ca "$M/ca.crt" --cert "$M/client-admin.crt" --key "$M/client-admin.key"
      --conns "$CONNS" --count "$N" --prefix /vms/vm-)

echo "== status API, fleet idle ($IDLE_SECONDS s, $CONNS connections)"
"${LOAD[@]}" --seconds "$IDLE_SECONDS" | tee "$T/idle.json"

echo "== encrypt all $N VMs through the manager, status API under load meanwhile"
start=$(date +%s.%N)
for n in $(seq 0 $((N - 1))); do
        "$VMC" vm encrypt "vm-$n" "${MC[@]}" >/dev/null
done
queued=$(date +%s.%N)
"${LOAD[@]}" --seconds 600 >"$T/busy.json" &
LOADPID=$!
PIDS+=($LOADPID)
while :; do
        left=$("$VMC" job list --json "${MC[@]}" | $PY -c 'import json,sys; print(sum(j["state"] not in ("done","failed","cancelled") for j in json.load(sys.stdin)))')
        [ "$left" = 0 ] && break
        sleep 0.5
done
end=$(date +%s.%N)
kill -INT "$LOADPID" 2>/dev/null || true
wait "$LOADPID" 2>/dev/null || true
cat "$T/busy.json"
"$VMC" job list --json "${MC[@]}" >"$T/jobs.json"
$PY - "$T/idle.json" "$T/busy.json" "$T/jobs.json" "$start" "$queued" "$end" "$N" <<'PYEOF'
import json, sys
idle, busy = (json.load(open(f)) for f in sys.argv[1:3])
jobs = json.load(open(sys.argv[3]))
start, queued, end, n = map(float, sys.argv[4:8])
done = sum(j["state"] == "done" for j in jobs)
print(f"encrypted {done} of {int(n)} VMs in {end - start:.1f} s ({(end - start) / n * 1000:.0f} ms per VM; "
      f"queueing took {queued - start:.1f} s)")
print(f"status API idle: {idle['rps']} req/s, p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']} ms")
print(f"status API while encrypting: {busy['rps']} req/s, p50 {busy['p50_ms']} ms, p99 {busy['p99_ms']} ms "
      f"(max {busy['max_ms']} ms, {busy['non_200']} non-200)")
print(f"floors: p99 < 50 ms while encrypting: {'met' if busy['p99_ms'] < 50 else 'NOT met'}; "
      f">= 5,000 req/s: {'met' if busy['rps'] >= 5000 else 'NOT met'} (idle: {'met' if idle['rps'] >= 5000 else 'NOT met'})")
PYEOF
echo "loadavg: $(cat /proc/loadavg)"
