#!/usr/bin/env bash
# vmcrypt-manager's limits (docs/fleet.md): idle TCP connections from one
# address beyond max-unauthenticated-per-address are cut at once, and those
# within it when handshake-timeout passes, while a client from another address
# is served; an event-stream reader that does not read is dropped once
# max-stream-buffer is unsent, while another follower gets every event.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
require_fleet
HERE=$(dirname "$0")
FLEET_IP=127.0.0.1
MANAGER_PORT=$(free_port)
M=$T/manager
expect_rc 0 init "$VMCRYPT_MANAGER" init "$M" --listen "$FLEET_IP:$MANAGER_PORT" --address "$FLEET_IP"
expect_rc 0 issue-aud "$VMCRYPT_MANAGER" issue "$M" audit1 --role auditor
{
        echo "max-unauthenticated-per-address = 5"
        echo "handshake-timeout = 2"
        echo "max-stream-buffer = 8192"
} >>"$M/manager.conf"
echo "max-stream-buffer = 100" >"$T/bad.conf"
expect_rc 2 bad-conf "$VMCRYPT_MANAGER" serve --config "$T/bad.conf"
assert_file_contains "$T/bad-conf.err" "max-stream-buffer takes a number from 4096" "a limit out of range"
manager_start

note "idle connections from one address: over the limit cut at once, the rest at the handshake deadline"
"$PY" "$HERE/fleet-limits.py" idle 127.0.0.1 "$MANAGER_PORT" 127.0.0.2 20 2 >"$T/idle.out" &
IDLE_PID=$!
sleep 0.5
assert_eq "$(api_status admin GET /hosts)" 200 "a client from another address during the flood"
wait "$IDLE_PID" || die "the idle client failed"
assert_eq "$(tr '\n' ' ' <"$T/idle.out")" "15 20 " "idle connections closed after 1 s, then after the deadline"
for _ in $(seq 20); do grep -q 'limits: closed' "$T/manager.log" && break; sleep 0.25; done
assert_file_contains "$T/manager.log" "limits: closed 0 connection.*, 15 over max-unauthenticated-per-address" \
        "the log line for the cut connections"
assert_file_contains "$T/manager.log" "limits: .* 5 past handshake-timeout" "the log line for the deadline"
assert_eq "$(api_status admin GET /hosts)" 200 "the manager after the flood"

note "a follower that does not read is dropped; another gets every event"
"$VMCRYPT" events --follow --json --manager-config "$M/admin.conf" >"$T/follow.jsonl" 2>"$T/follow.err" &
FOLLOW_PID=$!
track_pid "$FOLLOW_PID"
mkfifo "$T/go"
"$PY" "$HERE/fleet-limits.py" slow 127.0.0.1 "$MANAGER_PORT" "$M/ca.crt" "$M/client-admin.crt" \
        "$M/client-admin.key" "$T/slow.out" <"$T/go" &
SLOW_PID=$!
exec 7>"$T/go"
sleep 1
N=2000
"$PY" "$HERE/fleet-limits.py" flood 127.0.0.1 "$MANAGER_PORT" "$M/ca.crt" "$M/client-audit1.crt" \
        "$M/client-audit1.key" "$N" || die "the flood of refused requests failed"
for _ in $(seq 100); do [ "$(grep -c access-denied "$T/follow.jsonl")" -ge "$N" ] && break; sleep 0.1; done
assert_eq "$(grep -c access-denied "$T/follow.jsonl")" "$N" "events the reading follower got"
for _ in $(seq 20); do grep -q 'dropped 1 event stream' "$T/manager.log" && break; sleep 0.25; done
assert_file_contains "$T/manager.log" "dropped 1 event stream\(s\) over max-stream-buffer" "the slow reader dropped"
echo go >&7
exec 7>&-
wait "$SLOW_PID" || die "the slow reader failed"
GOT=$(cat "$T/slow.out")
[ "$GOT" -lt "$N" ] || die "the slow reader got all $N events: it was not dropped"
note "the slow reader got $GOT of $N events before it was dropped"
assert_eq "$(api_status admin GET /hosts)" 200 "the manager at the end"
kill "$FOLLOW_PID"
