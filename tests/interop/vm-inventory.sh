#!/usr/bin/env bash
# vm list / show / status over an inventory of 200+ domains through libvirt's test
# driver (test:///path/node.xml: no daemon, no QEMU) with real, small image files:
# every kind of disk state (plain, LUKS1, an interrupted encrypt job, an
# interrupted decrypt job, a disk the XML calls encrypted that is plain, qcow2,
# network and cdrom disks) lands in the right seeds' status, and the whole
# inventory is read in a few seconds.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/vm-lib.sh"
require_vmcrypt
"$VMCRYPT" vm --help >/dev/null 2>&1 || die "'$VMCRYPT vm' is missing: this build has no vm commands"

N=${N:-208}
make_inventory "$T/inv" "$N"
U=(--connect "test://$T/inv/node.xml")

note "vm list: $N domains, each disk's state from the disk"
start=$(date +%s%N)
vmc vm list "${U[@]}" --json >"$T/list.json" || die "vm list --json failed"
list_ms=$(( ($(date +%s%N) - start) / 1000000 ))
assert_eq "$(json_get "$T/list.json" "len(d)")" "$N" "domains listed"
assert_eq "$(json_get "$T/list.json" "[k['state'] for x in d if x['name'] == 'vm-5' for k in x['disks']]")" \
        '["plain", "encrypting"]' "disk states of vm-5"
assert_eq "$(json_get "$T/list.json" "[(k['target'], k['type'], k['format'], k['state']) for x in d if x['name'] == 'vm-7' for k in x['disks']]")" \
        '[["vda", "file", "raw", "plain"], ["vdb", "file", "raw", "plain"], ["vdc", "file", "qcow2", "unknown"], ["vdd", "network", "raw", "unknown"]]' \
        "disks of vm-7 (the cdrom is not a volume)"
vmc vm list "${U[@]}" >"$T/list.txt" || die "vm list failed"
assert_eq "$(grep -c '^vm-' "$T/list.txt")" "$N" "lines of vm list"
assert_file_contains "$T/list.txt" "^vm-2 .* \*vda:file/raw:encrypted vdb:file/raw:encrypted" "vm list line of vm-2"

note "vm show: one domain, the mismatch said in words"
expect_rc 0 show vmc vm show "${U[@]}" vm-7
assert_file_contains "$T/show.out" "still has <encryption>.*decrypted outside vmcrypt" "note on a plain disk the XML calls encrypted"
assert_file_contains "$T/show.out" "format qcow2: vmcrypt encrypts raw disks only" "qcow2 disk"
expect_rc 4 show-none vmc vm show "${U[@]}" no-such-vm
assert_file_contains "$T/show-none.err" "no domain called 'no-such-vm'" "unknown domain"
expect_rc 0 show-uuid vmc vm show "${U[@]}" --json 00000000-0000-4000-8000-000000000003
assert_eq "$(json_get "$T/show-uuid.out" "d['name']")" vm-3 "lookup by UUID"

note "vm status --json for all: the seeds' vocabulary per kind"
start=$(date +%s%N)
vmc vm status "${U[@]}" --json >"$T/status.jsonl" || die "vm status --json failed"
status_ms=$(( ($(date +%s%N) - start) / 1000000 ))
assert_eq "$(wc -l <"$T/status.jsonl")" "$N" "status lines"
"$PY" - "$T/status.jsonl" <<'PYEOF' || die "vm status gave a wrong status (above)"
import json, sys
want = {
    0: ("NotEncrypted", "NotEncrypted", "Not encrypted"),
    1: ("Encrypted", "NotEncrypted", "Encryption succeeded for the OS volume; 0 of 1"),
    2: ("Encrypted", "Encrypted", "Encryption succeeded for all volumes"),
    3: ("Encrypted", "NotMounted", "Encryption succeeded for all volumes"),
    4: ("NotEncrypted", "NotMounted", "Not encrypted"),
    5: ("NotEncrypted", "EncryptionInProgress", "vdb: encrypt "),
    6: ("Encrypted", "DecryptionInProgress", "vdb: decrypt "),
    7: ("NotEncrypted", "NotEncrypted", "still has <encryption>"),
}
bad = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    i = int(d["name"].split("-")[1])
    os_, data, msg = want[i % 8]
    got = (d["OsVolumeEncrypted"], d["DataVolumesEncrypted"])
    if got != (os_, data) or msg not in d["ProgressMessage"]:
        print(f"{d['name']}: got {got} {d['ProgressMessage']!r}, want {(os_, data)} {msg!r}")
        bad += 1
    if i % 8 == 5:
        p = [k["percent"] for k in d["disks"] if k["target"] == "vdb"][0]
        if not 0 < p < 100:
            print(f"{d['name']}: percent of the interrupted job {p}")
            bad += 1
sys.exit(1 if bad else 0)
PYEOF
expect_rc 0 status-two vmc vm status "${U[@]}" vm-5 vm-6
assert_file_contains "$T/status-two.out" "DataVolumesEncrypted: EncryptionInProgress" "human status of vm-5"
assert_file_contains "$T/status-two.out" "vdb: encrypt [0-9.]+% \([0-9]+ of 16 MiB\)" "progress message of vm-5"

note "timing: vm list ${list_ms} ms, vm status --json ${status_ms} ms for $N domains"
[ "$status_ms" -lt 20000 ] || die "vm status took ${status_ms} ms for $N domains (limit 20 s)"

note "libvirt unreachable: a clear error, exit 7"
expect_rc 7 noconn vmc vm list --connect "qemu+unix:///system?socket=$T/no-such-sock"
assert_file_contains "$T/noconn.err" "cannot connect to libvirt" "message without libvirt"
