#!/usr/bin/env bash
# The fleet end to end: vmcrypt-manager and three vmcrypt-agents, each agent in
# its own network namespace as its own host. Host h1 has a real libvirtd (the
# test's private one) and a VM with an OS and a data disk, keys in vmcrypt-kms
# under h1's own KMIP identity; h2 and h3 report inventories through libvirt's
# test driver. Through the manager and the CLI: the hosts and VMs appear; the VM
# is encrypted with its progress visible while it runs; the agent is killed
# mid-job and restarted, and the job completes; a decrypt is paused and resumed
# and the disks come back byte for byte. With the key server down a job pauses
# (key-unreachable event, tried again with backoff), survives a manager restart
# and runs when the key server is back. A data disk attached to the encrypted VM is
# noticed (disk-not-encrypted event) and encrypted by the manager's policy. A
# rekey job gives every disk a new KEK and retires the old one at the key
# server, as its result says. A second VM's encrypt loses its key server during
# the first disk's data pass: that disk finishes, the job pauses (key-unreachable) at
# the second disk's binding and finishes when the server is back, through a
# manager restart during the second data pass; a decrypt gives every byte back.
# A VM policy (data disks only) decides what the next encrypt job of vm2 does.
# An encrypted VM is started through the manager (start privilege): the guest
# reads every disk's original bytes and no libvirt secret is left.
# A deep rekey job gives vm1's disks new volume keys and a new KEK; a decrypt
# then gives every byte back. vSphere's two other key errors end a job with
# their own event and change nothing: a client certificate the key server does
# not accept (key-denied: keys not delivered to the host) and a KEK destroyed at
# the key server (key-missing).
# A hostile agent certificate (h2's) can
# neither report for h1 nor take or touch h1's jobs (403, audited); an auditor
# cannot encrypt; revoked certificates (an operator's, an agent's) are refused; a client without a
# certificate, or with one from another CA, gets nothing. Bad input gets 4xx
# and changes nothing. The event log shows every step, also as a stream.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/vm-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
require_vm_peers
require_keys_cli
require_fleet

libvirtd_start
_fleet_exit() {
        local rc=$?
        set +e
        for p in "${AGENT_PID[@]}"; do kill "$p" 2>/dev/null; done
        fleet_ns_cleanup
        (exit "$rc")
        _vm_exit
}
trap _fleet_exit EXIT
for i in 1 2 3; do fleet_ns "$i"; done
FLEET_IP=$FLEET_NET.5
MANAGER_PORT=$(free_port)

note "key server for the hosts, reachable at $FLEET_IP"
KMS_PORT=$(free_port)
"$VMCRYPT_KMS" init "$T/kms" --client h1 --listen "$FLEET_IP:$KMS_PORT" >/dev/null || die "vmcrypt-kms init failed"
# The server certificate must name the address the hosts use.
rm "$T/kms/server.crt" "$T/kms/server.key"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kms -keyout "$T/kms/server.key" \
        -out "$T/kms/server.csr" 2>/dev/null
printf 'subjectAltName=IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n' \
        "$FLEET_IP" >"$T/kms/ext.cnf"
openssl x509 -req -in "$T/kms/server.csr" -CA "$T/kms/ca.crt" -CAkey "$T/kms/ca.key" -CAcreateserial -days 2 \
        -extfile "$T/kms/ext.cnf" -out "$T/kms/server.crt" 2>/dev/null || die "cannot issue the KMS certificate"
kms_serve() {
        : >"$T/kms/serve.out"
        "$VMCRYPT_KMS" serve --config "$T/kms/kms.conf" >"$T/kms/serve.out" 2>"$T/kms/serve.err" &
        KMS_PID=$!
        track_pid "$KMS_PID"
        for _ in $(seq 100); do grep -q '^listening on' "$T/kms/serve.out" 2>/dev/null && break; sleep 0.1; done
        grep -q '^listening on' "$T/kms/serve.out" || die "vmcrypt-kms did not start: $(cat "$T/kms/serve.err")"
}
kms_serve
write_providers "$T/h1-providers.json" kms "$T/kms" h1 "$FLEET_IP:$KMS_PORT"

note "manager: init, an auditor, a revoked operator, serve"
M=$T/manager
expect_rc 0 init "$VMCRYPT_MANAGER" init "$M" --agent h1 --agent h2 --agent h3 --listen "$FLEET_IP:$MANAGER_PORT" \
        --address "$FLEET_IP"
assert_eq "$(stat -c %a "$M/ca.key") $(stat -c %a "$M/client-h1.key") $(stat -c %a "$M")" "600 600 700" \
        "modes of the CA key, an agent key and the directory"
expect_rc 1 init-again "$VMCRYPT_MANAGER" init "$M"
assert_file_contains "$T/init-again.err" "already holds a CA" "a second init"
expect_rc 0 issue-aud "$VMCRYPT_MANAGER" issue "$M" audit1 --role auditor
expect_rc 0 issue-op "$VMCRYPT_MANAGER" issue "$M" gone --role operator
expect_rc 0 issue-h4 "$VMCRYPT_MANAGER" issue "$M" h4 --role agent
for c in gone h4; do
        echo "revoked-client = $(openssl x509 -in "$M/client-$c.crt" -outform DER | sha256sum | cut -d' ' -f1)" \
                >>"$M/manager.conf"
done
echo "new-data-disk = encrypt" >>"$M/manager.conf"
manager_start

note "an unauthenticated client gets nothing"
rc=0; curl -s --max-time 5 --cacert "$M/ca.crt" "https://$FLEET_IP:$MANAGER_PORT/hosts" >"$T/noauth.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || die "a client without a certificate got an answer: $(cat "$T/noauth.out")"
assert_eq "$(wc -c <"$T/noauth.out")" 0 "bytes a client without a certificate got"
rc=0; curl -s --max-time 5 --cacert "$M/ca.crt" --cert "$T/kms/client-h1.crt" --key "$T/kms/client-h1.key" \
        "https://$FLEET_IP:$MANAGER_PORT/hosts" >"$T/otherca.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || die "a certificate of another CA got an answer: $(cat "$T/otherca.out")"
assert_eq "$(api_status gone GET /hosts)" 403 "a revoked operator"
assert_eq "$(api_status h4 POST /agent/register '{}')" 403 "a revoked agent"

note "a VM on h1 (real libvirtd), inventories on h2 and h3 (test driver)"
make_random_image "$T/os.img" 24M
make_random_image "$T/data.img" 12M
OS_SHA=$(sha256_range "$T/os.img")
DATA_SHA=$(sha256_range "$T/data.img")
domain_xml vm1 5eed0000-0000-4000-8000-00000000f1ee "$T" "$T/console.log" "$T/os.img" "$T/data.img" >"$T/vm1.xml"
virsh -c "$LV_URI" define "$T/vm1.xml" >/dev/null
for i in 2 3; do
        mkdir -p "$T/inv$i"
        truncate -s 1M "$T/inv$i/a.img"
        {
                echo "<node>"
                for k in 1 2; do
                        echo "<domain type='test'><name>web-h$i-$k</name><uuid>00000000-0000-4000-8000-00000000$i$k$i$k</uuid>"
                        echo "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>"
                        echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$T/inv$i/a.img'/><target dev='vda' bus='virtio'/></disk>"
                        echo "</devices></domain>"
                done
                echo "</node>"
        } >"$T/inv$i/node.xml"
done
for i in 1 2 3; do
        cp "$M/h$i.conf" "$T/agent-h$i.conf"
        sed -i "s#= client-#= $M/client-#; s#^ca = .*#ca = $M/ca.crt#" "$T/agent-h$i.conf"
        echo "state-dir = $T/agent-h$i-state" >>"$T/agent-h$i.conf"
        echo "poll-seconds = 2" >>"$T/agent-h$i.conf"
        echo "inventory-seconds = 5" >>"$T/agent-h$i.conf"
done
{
        echo "libvirt = $LV_URI"
        echo "providers = $T/h1-providers.json"
        echo "max-rate = 3000000"
} >>"$T/agent-h1.conf"
echo "libvirt = test://$T/inv2/node.xml" >>"$T/agent-h2.conf"
echo "libvirt = test://$T/inv3/node.xml" >>"$T/agent-h3.conf"
echo "nice = 0" >>"$T/agent-h3.conf"
for i in 1 2 3; do agent_start "$i" "$T/agent-h$i.conf"; done
# Started directly (not through a function): $! is the process to stop at the end.
"$VMCRYPT" events --follow --vm vm1 --json --manager-config "$M/admin.conf" >"$T/follow.jsonl" 2>"$T/follow.err" &
FOLLOW_PID=$!
track_pid "$FOLLOW_PID"
for _ in $(seq 100); do
        mc host list --json >"$T/hosts.json" 2>/dev/null &&
                [ "$(json_get "$T/hosts.json" "sum(h['vms'] for h in d)")" = 5 ] && break
        sleep 0.2
done
assert_eq "$(json_get "$T/hosts.json" "[(h['name'], h['vms']) for h in d]")" '[["h1", 1], ["h2", 2], ["h3", 2]]' \
        "hosts and their VM counts"
# Data passes are background work: niced by default, as configured otherwise.
assert_eq "$(ps -o ni= -p "$(pgrep -n -f "vmcrypt-agent --config $T/agent-h1.conf")" | tr -d ' ')" 10 "the agent's nice by default"
assert_eq "$(ps -o ni= -p "$(pgrep -n -f "vmcrypt-agent --config $T/agent-h3.conf")" | tr -d ' ')" 0 "the agent's nice with nice = 0"
expect_rc 0 hosts mc host list
assert_file_contains "$T/hosts.out" "^h2 +[0-9.]+ +2 " "host list"
mc vm status vm1 --json >"$T/st.json" || die "vm status through the manager failed"
assert_eq "$(json_get "$T/st.json" "(d['host'], d['OsVolumeEncrypted'], d['DataVolumesEncrypted'])")" \
        '["h1", "NotEncrypted", "NotEncrypted"]' "vm1 before"

note "a hostile agent (h2's certificate) cannot report for h1"
assert_eq "$(api_status h2 POST /agent/inventory '{"host":"h1","vms":[]}')" 403 "h2 reporting for h1"
assert_eq "$(api_status h2 POST /agent/heartbeat '{"host":"h1"}')" 403 "h2 heartbeating for h1"
assert_eq "$(api_status h2 GET '/agent/jobs?host=h1')" 403 "h2 asking for h1's jobs"
assert_eq "$(api_status h2 GET /vms)" 403 "an agent reading the API"
assert_eq "$(api_status audit1 POST /vms/vm1/encrypt '{}')" 403 "an auditor encrypting"
assert_eq "$(api_status audit1 GET /vms/vm1)" 200 "an auditor reading"
mc vm status vm1 --json >"$T/st.json"
assert_eq "$(json_get "$T/st.json" "d['host']")" h1 "vm1 still h1's after h2's attempt"

note "bad input: 4xx, nothing changed"
assert_eq "$(api_status admin POST /vms/vm1/encrypt 'not json')" 400 "a body that is not JSON"
assert_eq "$(api_status admin POST /vms/vm1/encrypt '{"kek":"x"}')" 400 "an unknown option"
assert_eq "$(api_status admin POST /vms/no-such-vm/encrypt)" 404 "an unknown VM"
assert_eq "$(api_status admin POST /jobs/abc/cancel)" 400 "a job id that is no number"
assert_eq "$(api_status admin POST /jobs/999/cancel)" 404 "an unknown job"
assert_eq "$(api_status admin GET /nothing)" 404 "an unknown path"
assert_eq "$(api_status admin DELETE /vms)" 405 "a method a path does not take"
assert_eq "$(api_status admin GET '/events?follow=2')" 400 "follow=2"
assert_eq "$(api_status h1 POST /agent/inventory '{"vms":[{"name":"a/b"}]}')" 400 "a VM name with a slash"
assert_eq "$(api_status h1 POST /agent/jobs/1/progress '{"disk":"vda","done":5,"total":1}')" 400 "done > total"
mc job list --json >"$T/jobs.json"
assert_eq "$(json_get "$T/jobs.json" "len(d)")" 0 "jobs after the bad requests"

note "encrypt vm1 through the manager: progress visible while it runs"
expect_rc 0 enc mc vm encrypt vm1
assert_file_contains "$T/enc.out" "job 1: encrypt of vm1 on h1: queued" "encrypt queued"
expect_rc 5 enc-twice mc vm encrypt vm1
assert_file_contains "$T/enc-twice.err" "vm1 has job 1" "a second job for the same VM"
for _ in $(seq 200); do
        job_json 1
        [ "$(json_get "$T/job.json" "d['state'] == 'running' and 0 < d['percent'] < 100")" = true ] && break
        sleep 0.1
done
assert_eq "$(json_get "$T/job.json" "(d['state'], d['host'])")" '["running", "h1"]' "job 1 while it runs"
[ "$(json_get "$T/job.json" "0 < d['percent'] < 100")" = true ] || die "no progress seen: $(cat "$T/job.json")"
expect_rc 0 st-running mc vm status vm1
assert_file_contains "$T/st-running.out" "Job: +1 encrypt running, vd[ab] [0-9.]+%" "vm status during the job"
note "h2 cannot take or touch h1's job"
assert_eq "$(api_status h2 POST /agent/jobs/1/progress '{"disk":"vda","done":1,"total":2}')" 403 "h2's progress for job 1"
assert_eq "$(api_status h2 POST /agent/jobs/1/done '{"result":"done"}')" 403 "h2 finishing job 1"
assert_eq "$(api h2 GET '/agent/jobs?wait=0' | tail -1)" 204 "h2's own jobs (none)"

note "kill h1's agent mid-job and start it again: the job completes"
kill -KILL "${AGENT_PID[1]}"
wait "${AGENT_PID[1]}" 2>/dev/null || true
[ -s "$T/agent-h1-state/job.json" ] || die "the agent left no record of its job"
agent_start 1 "$T/agent-h1.conf"
for _ in $(seq 600); do
        job_json 1
        case $(json_get "$T/job.json" "d['state']") in done|failed|cancelled) break ;; esac
        sleep 0.1
done
assert_eq "$(json_get "$T/job.json" "(d['state'], d['attempts'], d['percent'])")" '["done", 2, 100.0]' \
        "job 1 after the agent's restart"
for _ in $(seq 100); do
        mc vm status vm1 --json >"$T/st.json"
        [ "$(json_get "$T/st.json" "d['DataVolumesEncrypted']")" = Encrypted ] && break
        sleep 0.1
done
assert_eq "$(json_get "$T/st.json" "(d['OsVolumeEncrypted'], d['DataVolumesEncrypted'], d['job'])")" \
        '["Encrypted", "Encrypted", null]' "vm1 after encrypt"
assert_state "$T/os.img" "" encrypted
assert_state "$T/data.img" "" encrypted

note "decrypt, paused and resumed, brings the bytes back"
expect_rc 0 dec mc vm decrypt vm1
for _ in $(seq 200); do
        job_json 2
        [ "$(json_get "$T/job.json" "d['state'] == 'running' and d['percent'] > 0")" = true ] && break
        sleep 0.1
done
expect_rc 0 pause mc job pause 2
for _ in $(seq 100); do
        job_json 2
        [ "$(json_get "$T/job.json" "d['state']")" = paused ] && break
        sleep 0.1
done
assert_eq "$(json_get "$T/job.json" "d['state']")" paused "job 2 after pause"
sleep 1
job_json 2
P1=$(json_get "$T/job.json" "d['done']")
sleep 1.5
job_json 2
assert_eq "$(json_get "$T/job.json" "(d['state'], d['done'])")" "[\"paused\", $P1]" "a paused job does not move"
expect_rc 5 pause-again mc job pause 2
expect_rc 0 resume mc job resume 2
for _ in $(seq 600); do
        job_json 2
        case $(json_get "$T/job.json" "d['state']") in done|failed|cancelled) break ;; esac
        sleep 0.1
done
assert_eq "$(json_get "$T/job.json" "d['state']")" done "job 2 after resume: $(cat "$T/job.json")"
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk after the round trip"
assert_eq "$(sha256_range "$T/data.img")" "$DATA_SHA" "data disk after the round trip"

note "the event log: every step, who did it, as a list and as a stream"
mc events --vm vm1 --json >"$T/events.jsonl"
"$PY" - "$T/events.jsonl" <<'PYEOF' || die "event log (above)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [(e["kind"], e["actor"], e["job"]) for e in ev]
want = [("job-queued", "admin", 1), ("job-started", "h1", 1), ("job-interrupted", "h1", 1), ("job-started", "h1", 1),
        ("job-done", "h1", 1),
        ("job-queued", "admin", 2), ("job-started", "h1", 2), ("job-pause-requested", "admin", 2),
        ("job-paused", "h1", 2), ("job-resumed", "admin", 2), ("job-started", "h1", 2), ("job-done", "h1", 2)]
if kinds != want:
    print("got ", kinds); print("want", want); sys.exit(1)
PYEOF
mc events --json >"$T/all.jsonl"
assert_eq "$(grep -c '"kind":"access-denied"' "$T/all.jsonl")" 9 "refusals audited"
assert_file_contains "$T/all.jsonl" '"actor":"h2".*may not act for host h1' "h2's attempt audited"
assert_file_contains "$T/all.jsonl" '"actor":"audit1".*role auditor' "the auditor's attempt audited"
for _ in $(seq 50); do [ "$(grep -c job-done "$T/follow.jsonl")" = 2 ] && break; sleep 0.1; done
assert_eq "$(cut -c1-200 "$T/follow.jsonl" | wc -l)" "$(wc -l <"$T/events.jsonl")" "events streamed to the follower"
kill "$FOLLOW_PID"

note "key server down: the job pauses with a key-unreachable event; it runs when the server is back"
kill "$KMS_PID"
wait "$KMS_PID" 2>/dev/null || true
# --wait waits through the pause and the manager's restart below.
mc vm encrypt vm1 --wait >"$T/enc3.out" 2>"$T/enc3.err" &
ENC3_PID=$!
for _ in $(seq 300); do
        mc events --vm vm1 --json >"$T/ev3.jsonl"
        grep -q '"kind":"key-unreachable"' "$T/ev3.jsonl" && break
        sleep 0.1
done
assert_file_contains "$T/ev3.jsonl" \
        '"actor":"h1".*"job":3,"kind":"key-unreachable".*the key server is unreachable: .*no KMS of provider.*is reachable.*paused, tried again in 2 s' \
        "key-unreachable event"
job_json 3
assert_eq "$(json_get "$T/job.json" "(d['state'], d['request'])")" '["paused", "key-wait"]' \
        "job 3 while the key server is down"
assert_file_contains "$T/job.json" "tried again in" "job 3's message"
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk untouched while the key server is down"

note "restart the manager while the job waits: nothing lost"
kill "$MANAGER_PID"
wait "$MANAGER_PID" 2>/dev/null || true
manager_start
job_json 3
assert_eq "$(json_get "$T/job.json" "d['state']")" paused "job 3 after the manager's restart"
kms_serve
for _ in $(seq 900); do
        job_json 3
        case $(json_get "$T/job.json" "d['state']") in done|failed|cancelled) break ;; esac
        sleep 0.1
done
assert_eq "$(json_get "$T/job.json" "d['state']")" done "job 3 once the key server is back: $(cat "$T/job.json")"
rc=0; wait "$ENC3_PID" || rc=$?
assert_eq "$rc" 0 "vm encrypt --wait through the pause and the restart: $(cat "$T/enc3.err")"
assert_file_contains "$T/enc3.out" "^job 3: encrypt of vm1 on h1: done" "vm encrypt --wait's answer"
assert_state "$T/os.img" "" encrypted

note "a data disk attached to the encrypted VM: an event, and the policy encrypts it"
make_random_image "$T/data2.img" 8M
DATA2_SHA=$(sha256_range "$T/data2.img")
virsh -c "$LV_URI" attach-disk vm1 "$T/data2.img" vdc --config --driver qemu --subdriver raw >/dev/null ||
        die "virsh attach-disk failed"
for _ in $(seq 600); do
        mc job list --json >"$T/jobs.json"
        [ "$(json_get "$T/jobs.json" "[j['state'] for j in d if j['id'] == 4] == ['done']")" = true ] && break
        sleep 0.1
done
assert_eq "$(json_get "$T/jobs.json" "[(j['id'], j['op'], j['actor'], j['state']) for j in d][3:]")" \
        '[[4, "encrypt", "policy", "done"]]' "the policy's job"
mc events --vm vm1 --json >"$T/ev4.jsonl"
assert_file_contains "$T/ev4.jsonl" '"kind":"disk-not-encrypted".*disk vdc is not encrypted.*the policy encrypts it' \
        "disk-not-encrypted event"
assert_state "$T/data2.img" "" encrypted
assert_eq "$(json_get "$T/jobs.json" "[(j['id'], j['state']) for j in d]")" \
        '[[1, "done"], [2, "done"], [3, "done"], [4, "done"]]' "jobs at the end"

note "a shallow rekey through the manager: a new KEK on every disk, the old one retired"
# disk_keks FILE: the KEKs every vmcrypt token of the image names, sorted, unique
disk_keks() {
        "$VMCRYPT" disk status --json "$1" >"$T/dst.json" || die "disk status $1 failed"
        json_get "$T/dst.json" "sorted(set(t.get('kek_id') for t in d['tokens']))"
}
OLD_KEK=$(disk_keks "$T/os.img" | tr -d '[]" ')
[ -n "$OLD_KEK" ] || die "no KEK on the OS disk after encrypt"
for f in os data data2; do
        assert_eq "$(disk_keks "$T/$f.img")" "[\"$OLD_KEK\"]" "the KEK of $f.img before the rekey"
        cryptsetup luksDump "$T/$f.img" | grep -A1 "MK digest" | tr -d ' \t\n' >"$T/$f.mk0"
done
expect_rc 8 rekey-aud "$VMCRYPT" vm rekey vm1 --manager-config "$M/audit1.conf"
expect_rc 0 rekey mc vm rekey vm1 --wait
NEW_KEK=$(disk_keks "$T/os.img" | tr -d '[]" ')
assert_ne "$NEW_KEK" "$OLD_KEK" "the VM's KEK after the rekey job"
for f in os data data2; do
        assert_eq "$(disk_keks "$T/$f.img")" "[\"$NEW_KEK\"]" "the KEK of $f.img after the rekey job (old $OLD_KEK)"
        cryptsetup luksDump "$T/$f.img" | grep -A1 "MK digest" | tr -d ' \t\n' >"$T/$f.mk1"
        cmp -s "$T/$f.mk0" "$T/$f.mk1" || die "a shallow rekey job changed the volume key of $f.img"
done
assert_file_contains "$T/rekey.out" \
        "^job 5: rekey of vm1 on h1: done: rekey vm1: 3 disk\(s\) under KEK $NEW_KEK at provider kms; was KEK $OLD_KEK; old KEK $OLD_KEK retired" \
        "the rekey job's result"
mc events --vm vm1 --json >"$T/ev5.jsonl"
assert_file_contains "$T/ev5.jsonl" '"actor":"h1".*"job":5,"kind":"job-done".*old KEK '"$OLD_KEK"' retired' \
        "the rekey's job-done event"
# The key server agrees: what the event says was retired is destroyed there.
expect_rc 0 old-kek "$VMCRYPT" kms attrs "$OLD_KEK" --providers "$T/h1-providers.json" --provider kms
assert_file_contains "$T/old-kek.out" "State: Destroyed" "the old KEK at the key server"
expect_rc 0 new-kek "$VMCRYPT" kms attrs "$NEW_KEK" x-Name --providers "$T/h1-providers.json" --provider kms
assert_file_contains "$T/new-kek.out" "x-Name: vm1" "the new KEK, tagged with the VM"

note "key server down after a VM's first disk: the job waits, then finishes the second"
# The data pass needs no key server once it runs; the next disk's binding does.
# So the key server goes while vm2's first disk is in its (rate-limited) data
# pass: that disk finishes, the second cannot be bound, the job pauses with a
# key-unreachable event and runs again when the key server is back.
make_random_image "$T/b-os.img" 9M
make_random_image "$T/b-data.img" 15M
B_OS_SHA=$(sha256_range "$T/b-os.img")
B_DATA_SHA=$(sha256_range "$T/b-data.img")
domain_xml vm2 5eed0000-0000-4000-8000-00000000f2ee "$T" "$T/console2.log" "$T/b-os.img" "$T/b-data.img" \
        >"$T/vm2.xml"
virsh -c "$LV_URI" define "$T/vm2.xml" >/dev/null
for _ in $(seq 150); do
        mc vm status vm2 --json >"$T/st2.json" 2>/dev/null && break
        sleep 0.1
done
assert_eq "$(json_get "$T/st2.json" "(d['host'], d['OsVolumeEncrypted'])")" '["h1", "NotEncrypted"]' "vm2 reported"
expect_rc 0 enc6 mc vm encrypt vm2
for _ in $(seq 300); do
        job_json 6
        [ "$(json_get "$T/job.json" "d['state'] == 'running' and d['disk'] == 'vda' and 0 < d['done'] < d['total']")" = true ] &&
                break
        sleep 0.05
done
assert_eq "$(json_get "$T/job.json" "(d['state'], d['disk'], 0 < d['done'] < d['total'])")" '["running", "vda", true]' \
        "job 6 in its first disk's data pass"
kill "$KMS_PID"
wait "$KMS_PID" 2>/dev/null || true
for _ in $(seq 300); do
        mc events --vm vm2 --json >"$T/ev6.jsonl"
        grep -q '"kind":"key-unreachable"' "$T/ev6.jsonl" && break
        sleep 0.1
done
assert_file_contains "$T/ev6.jsonl" '"actor":"h1".*"job":6,"kind":"key-unreachable".*tried again in 2 s' \
        "key-unreachable event for the second disk"
job_json 6
assert_eq "$(json_get "$T/job.json" "d['state']")" paused "job 6 while the key server is down"
assert_state "$T/b-os.img" "" encrypted
assert_state "$T/b-data.img" "" plain
assert_eq "$(sha256_range "$T/b-data.img")" "$B_DATA_SHA" "vm2's second disk untouched while the key server is down"
kms_serve

note "restart the manager while the second disk's data pass runs: the job goes on"
for _ in $(seq 600); do
        job_json 6
        [ "$(json_get "$T/job.json" "d['state'] == 'running' and d['disk'] == 'vdb' and 0 < d['done'] < d['total']")" = true ] &&
                break
        sleep 0.05
done
assert_eq "$(json_get "$T/job.json" "(d['state'], d['disk'], d['attempts'])")" '["running", "vdb", 2]' \
        "job 6 in its second disk's data pass"
P6=$(json_get "$T/job.json" "d['done']")
kill "$MANAGER_PID"
wait "$MANAGER_PID" 2>/dev/null || true
sleep 1
manager_start
job_json 6
assert_eq "$(json_get "$T/job.json" "(d['state'], d['disk'], d['attempts'])")" '["running", "vdb", 2]' \
        "job 6 right after the manager's restart"
for _ in $(seq 600); do
        job_json 6
        case $(json_get "$T/job.json" "d['state']") in done|failed|cancelled) break ;; esac
        [ "$(json_get "$T/job.json" "d['done'] > $P6")" = true ] && SEEN_MORE=1
        sleep 0.1
done
assert_eq "$(json_get "$T/job.json" "(d['state'], d['attempts'], d['percent'])")" '["done", 2, 100.0]' \
        "job 6 at the end: $(cat "$T/job.json")"
assert_eq "${SEEN_MORE:-0}" 1 "progress reported to the restarted manager"
assert_state "$T/b-os.img" "" encrypted
assert_state "$T/b-data.img" "" encrypted
mc events --vm vm2 --json >"$T/ev6.jsonl"
assert_eq "$("$PY" -c 'import json,sys; print(" ".join(json.loads(l)["kind"] for l in open(sys.argv[1])))' "$T/ev6.jsonl")" \
        "job-queued job-started key-unreachable job-started job-done" "vm2's events"

note "decrypt vm2: every byte as before"
expect_rc 0 dec7 mc vm decrypt vm2 --wait
assert_eq "$(sha256_range "$T/b-os.img")" "$B_OS_SHA" "vm2's first disk after the outage and the round trip"
assert_eq "$(sha256_range "$T/b-data.img")" "$B_DATA_SHA" "vm2's second disk after the outage and the round trip"

note "an encryption policy: vm2's encrypt job takes its data disk only"
expect_rc 8 pol-aud "$VMCRYPT" policy set vm:vm2 volumes=data --manager-config "$M/audit1.conf"
expect_rc 2 pol-bad mc policy set vm:vm2 volumes=some
assert_file_contains "$T/pol-bad.err" "volumes must be all, os or data" "a bad policy value"
expect_rc 0 pol-def mc policy set default provider=kms format=luks1
expect_rc 0 pol-vm mc policy set vm:vm2 volumes=data
expect_rc 0 pol-list mc policy list
assert_file_contains "$T/pol-list.out" "^vm:vm2 +- +data " "policy list"
assert_file_contains "$T/pol-list.out" "^default +kms +- +luks1 " "policy list (default)"
expect_rc 0 enc8 mc vm encrypt vm2 --wait --json
assert_eq "$(json_get "$T/enc8.out" "(d['id'], d['state'], d['params'])")" \
        '[8, "done", "{\"format\":\"luks1\",\"policy\":[\"default\",\"vm:vm2\"],\"provider\":\"kms\",\"volumes\":\"data\"}"]' \
        "the job and the policy it took"
assert_state "$T/b-os.img" "" plain
assert_state "$T/b-data.img" "" encrypted
mc events --vm vm2 --json >"$T/ev8.jsonl"
assert_file_contains "$T/ev8.jsonl" '"actor":"admin".*"kind":"policy-set".*policy vm:vm2: provider .., volumes .data.' \
        "the policy's event"

note "a deep rekey through the manager: progress, new volume keys, every byte intact"
expect_rc 0 deep9 mc vm rekey vm1 --deep
assert_file_contains "$T/deep9.out" "^job 9: deep-rekey of vm1 on h1: queued" "deep rekey queued"
for _ in $(seq 900); do
        job_json 9
        json_get "$T/job.json" "(d['state'], d['disk'], d['percent'])" >>"$T/deep-progress"
        case $(json_get "$T/job.json" "d['state']") in done|failed|cancelled) break ;; esac
        sleep 0.1
done
note "job 9 as seen while it ran: $(uniq "$T/deep-progress" | tr '\n' ' ' | cut -c1-600)"
assert_eq "$(json_get "$T/job.json" "d['op']")" deep-rekey "job 9's kind"
assert_eq "$(json_get "$T/job.json" "d['state']")" done "job 9 at the end: $(cat "$T/job.json")"
DEEP_KEK=$(disk_keks "$T/os.img" | tr -d '[]" ')
assert_ne "$DEEP_KEK" "$NEW_KEK" "the VM's KEK after the deep rekey"
assert_file_contains "$T/job.json" "3 disk\(s\) under KEK $DEEP_KEK .*old KEK $NEW_KEK retired" "job 9's result"
for f in os data data2; do
        assert_eq "$(disk_keks "$T/$f.img")" "[\"$DEEP_KEK\"]" "the KEK of $f.img after the deep rekey"
        cryptsetup luksDump "$T/$f.img" | grep -A1 "MK digest" | tr -d ' \t\n' >"$T/$f.mk2"
        ! cmp -s "$T/$f.mk1" "$T/$f.mk2" || die "the deep rekey left the volume key of $f.img"
done
expect_rc 0 dec10 mc vm decrypt vm1 --wait
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk after the deep rekey and a decrypt"
assert_eq "$(sha256_range "$T/data.img")" "$DATA_SHA" "data disk after the deep rekey and a decrypt"
assert_eq "$(sha256_range "$T/data2.img")" "$DATA2_SHA" "attached disk after the deep rekey and a decrypt"

note "keys not delivered to the host: a client certificate the key server refuses ends the job"
"$VMCRYPT_KMS" issue-client "$T/kms" h1old --not-before-days -30 --days 10 >/dev/null
cp "$T/h1-providers.json" "$T/h1-providers.good"
write_providers "$T/h1-providers.json" kms "$T/kms" h1old "$FLEET_IP:$KMS_PORT"
OS_SNAP=$(sha256sum <"$T/os.img")
expect_rc 1 enc11 mc vm encrypt vm1 --wait --json
assert_eq "$(json_get "$T/enc11.out" "(d['id'], d['state'])")" '[11, "failed"]' "job 11 with an expired certificate"
mc events --vm vm1 --json >"$T/ev11.jsonl"
assert_file_contains "$T/ev11.jsonl" '"actor":"h1".*"job":11,"kind":"key-denied".*expired.*renew the client certificate' \
        "key-denied event"
assert_eq "$(sha256sum <"$T/os.img")" "$OS_SNAP" "vm1's OS disk after the refused job"
assert_state "$T/os.img" "" plain
cp "$T/h1-providers.good" "$T/h1-providers.json"

note "a key missing at the key server: vm2's KEK destroyed, its decrypt job fails with key-missing"
K8=$(disk_keks "$T/b-data.img" | tr -d '[]" ')
[ -n "$K8" ] || die "no KEK on vm2's data disk"
expect_rc 0 revoke8 "$VMCRYPT" kms revoke "$K8" --providers "$T/h1-providers.json" --provider kms
expect_rc 0 destroy8 "$VMCRYPT" kms destroy "$K8" --providers "$T/h1-providers.json" --provider kms
B_SNAP=$(sha256sum <"$T/b-data.img")
expect_rc 1 dec12 mc vm decrypt vm2 --wait --json
assert_eq "$(json_get "$T/dec12.out" "(d['id'], d['state'])")" '[12, "failed"]' "job 12 without its KEK"
mc events --vm vm2 --json >"$T/ev12.jsonl"
assert_file_contains "$T/ev12.jsonl" "\"actor\":\"h1\".*\"job\":12,\"kind\":\"key-missing\".*KEK $K8" "key-missing event"
assert_eq "$(sha256sum <"$T/b-data.img")" "$B_SNAP" "vm2's data disk after the failed decrypt"
assert_state "$T/b-data.img" "" encrypted

note "start an encrypted VM through the manager: its host releases the keys, the guest reads every disk"
expect_rc 0 enc13 mc vm encrypt vm1 --wait
guest_kit "$T" # vm1 boots the test's guest kit from $T
expect_rc 8 start-aud "$VMCRYPT" vm start vm1 --manager-config "$M/audit1.conf"
assert_file_contains "$T/start-aud.err" "lacks the privilege start" "an auditor's start"
rm -f "$T/console.log"
expect_rc 0 start14 mc vm start vm1 --wait
assert_file_contains "$T/start14.out" "^job 14: start of vm1 on h1: done: start vm1: running, 3 disk key\(s\) released" \
        "the start job's result"
for _ in $(seq 360); do grep -q GUEST-DONE "$T/console.log" 2>/dev/null && break; sleep 0.25; done
assert_file_contains "$T/console.log" "SHA vda $OS_SHA" "the OS disk as the guest reads it"
assert_file_contains "$T/console.log" "SHA vdb $DATA_SHA" "the data disk as the guest reads it"
assert_file_contains "$T/console.log" "SHA vdc $DATA2_SHA" "the attached disk as the guest reads it"
# No secret outlives the start: libvirt holds none of the VM's keys.
assert_eq "$(virsh -c "$LV_URI" secret-list | grep -cE "^ *[0-9a-f]{8}-" || true)" 0 "libvirt secrets after the start"
