#!/usr/bin/env bash
# Two vmcrypt-managers on one PostgreSQL server that the test starts itself
# (initdb in the test's directory, a Unix socket only, run as the postgres user):
# the same schema and migrations as SQLite, state shared between the managers
# (an agent registers at one and reports at the other, its key providers too,
# registered with the fleet at the other; a job queued at one is
# paused through the other), a queued job handed to exactly one of many
# concurrent claims spread over both managers, an event stream at one showing
# what happens at the other, events the database refuses to change, and a
# manager restart that loses nothing. The agent is played by curl with the
# host's certificate: fleet.sh runs the real agent.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
require_fleet
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL 15 is not installed: run scripts/deps.sh"
getent passwd postgres >/dev/null || die "no postgres user: run scripts/deps.sh (postgresql)"
require_cmd runuser psql

note "PostgreSQL in $T/pg (socket only)"
chmod 711 "$T"
mkdir -p "$T/pg/sock"
chown -R postgres: "$T/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg/data" -A trust -U postgres >"$T/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -5 "$T/initdb.log")"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w \
        -o "-k $T/pg/sock -c listen_addresses=''" start >/dev/null || die "PostgreSQL did not start: $(tail -5 "$T/pg/log")"
_pg_exit() {
        local rc=$?
        set +e
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate -w stop >/dev/null 2>&1
        (exit "$rc")
        _lib_cleanup
}
trap _pg_exit EXIT
runuser -u postgres -- "$PGBIN/../bin/createdb" -h "$T/pg/sock" fleet 2>/dev/null ||
        runuser -u postgres -- createdb -h "$T/pg/sock" fleet || die "createdb failed"
PGURI="postgresql://postgres@/fleet?host=$T/pg/sock"
psq() { psql -X -q -t -A -h "$T/pg/sock" -U postgres fleet "$@"; }

note "two managers on it"
# Test builds hold each claim's transaction open 300 ms, so that claims through the
# two managers would overlap if the store did not serialize them.
require_testpoints
export VMCRYPT_TEST_CLAIM_DELAY_MS=300
FLEET_IP=127.0.0.1
M=$T/manager
P1=$(free_port)
P2=$(free_port)
expect_rc 0 init "$VMCRYPT_MANAGER" init "$M" --agent h1 --agent h2 --listen "127.0.0.1:$P1"
sed -i "s#^database = .*#database = $PGURI#" "$M/manager.conf"
sed "s#^listen = .*#listen = 127.0.0.1:$P2#" "$M/manager.conf" >"$M/manager2.conf"
MANAGER_PORT=$P1
manager_start
PID1=$MANAGER_PID
"$VMCRYPT_MANAGER" serve --config "$M/manager2.conf" --log-level debug >>"$T/manager2.log" 2>&1 &
PID2=$!
track_pid "$PID2"
manager_wait "$P2"
assert_eq "$(psq -c 'SELECT version FROM schema_version')" 5 "schema version in PostgreSQL"
at() { local p=$1; shift; MANAGER_PORT=$p api "$@"; }
at_status() { at "$@" | tail -1; }

note "state is shared: register at one, report at the other"
assert_eq "$(at_status "$P1" h1 POST /agent/register '{"version":"t"}')" 200 "register at manager 1"
assert_eq "$(at_status "$P2" h1 POST /agent/inventory '{"vms":[{"name":"vm1","uuid":"u1","disks":[]}]}')" 200 \
        "inventory at manager 2"
at "$P1" admin GET /vms | sed -n 1p >"$T/vms.json"
assert_eq "$(json_get "$T/vms.json" "[(v['name'], v['host']) for v in d]")" '[["vm1", "h1"]]' "VMs at manager 1"
assert_eq "$(at_status "$P2" h2 POST /agent/inventory '{"host":"h1","vms":[]}')" 403 "h2 reporting for h1"

note "policies in PostgreSQL: set at one manager, replaced at the other, used by a job"
assert_eq "$(at_status "$P1" admin PUT /policies '{"scope":"group:g","hosts":["h1"],"volumes":"os"}')" 200 \
        "a group policy at manager 1"
assert_eq "$(at_status "$P2" admin PUT /policies '{"scope":"group:g","hosts":["h1"],"volumes":"data"}')" 200 \
        "the same policy replaced at manager 2"
at "$P1" admin GET /policies | head -1 >"$T/pol.json"
assert_eq "$(json_get "$T/pol.json" "[(p['scope'], p['hosts'], p['volumes']) for p in d]")" \
        '[["group:g", ["h1"], "data"]]' "policies at manager 1"

note "key providers in PostgreSQL: reported at one manager, registered at the other"
assert_eq "$(at_status "$P2" h1 POST /agent/inventory '{"vms":[{"name":"vm1","uuid":"u1","disks":[]}],"providers":[{"name":"kms","kind":"kmip","endpoints":["127.0.0.1:5696"],"default":true,"state":"reachable","message":""}]}')" \
        200 "inventory with providers at manager 2"
assert_eq "$(at_status "$P1" admin PUT /providers/kms '{"kind":"kmip","endpoints":["127.0.0.1:5696"]}')" 200 \
        "registration at manager 1"
at "$P2" admin GET /providers | head -1 >"$T/prov.json"
assert_eq "$(json_get "$T/prov.json" "[(p['name'], p['registered']['kind'], [(h['host'], h['default'], h['state']) for h in p['hosts']], p['missing']) for p in d]")" \
        '[["kms", "kmip", [["h1", true, "reachable"]], []]]' "providers at manager 2"

# Started directly (not through a function): $! is the process to stop at the end.
curl -s -N --max-time 120 --cacert "$M/ca.crt" --cert "$M/client-admin.crt" --key "$M/client-admin.key" \
        "https://127.0.0.1:$P2/events?follow=1" >"$T/follow.jsonl" 2>/dev/null &
FOLLOW=$!
track_pid "$FOLLOW"

note "a job queued at manager 2 is handed to exactly one of 10 concurrent claims"
assert_eq "$(at_status "$P2" admin POST /vms/vm1/encrypt '{}')" 202 "encrypt at manager 2"
at "$P1" admin GET /jobs/1 | head -1 >"$T/job1.json"
assert_eq "$(json_get "$T/job1.json" "d['params']")" '{"format":"","policy":["group:g"],"provider":"","volumes":"data"}' \
        "the job's params from the group policy"
for i in $(seq 10); do
        port=$P1; [ $((i % 2)) = 0 ] && port=$P2
        at_status "$port" h1 GET '/agent/jobs?wait=0' >"$T/claim-$i" &
done
wait $(jobs -p | grep -v "^$FOLLOW\$" | grep -v "^$PID1\$" | grep -v "^$PID2\$") 2>/dev/null || true
unset VMCRYPT_TEST_CLAIM_DELAY_MS
assert_eq "$(cat "$T"/claim-* | sort | uniq -c | awk '{print $2 ":" $1}' | paste -sd' ')" "200:1 204:9" \
        "answers to the claims"
assert_eq "$(psq -c "SELECT count(*) FROM events WHERE kind = 'job-started'")" 1 "job-started events"

note "progress at one, pause at the other"
assert_eq "$(at "$P1" h1 POST /agent/jobs/1/progress '{"disk":"vda","done":5,"total":10}' | sed -n 1p)" \
        '{"action":"continue"}' "progress at manager 1"
assert_eq "$(at_status "$P2" admin POST /jobs/1/pause)" 200 "pause at manager 2"
assert_eq "$(at "$P1" h1 POST /agent/jobs/1/progress '{"disk":"vda","done":6,"total":10}' | sed -n 1p)" \
        '{"action":"pause"}' "the agent hears of the pause at manager 1"
assert_eq "$(at_status "$P1" h1 POST /agent/jobs/1/done '{"result":"paused","message":""}')" 200 "paused"
at "$P2" admin GET /jobs/1 | sed -n 1p >"$T/job.json"
assert_eq "$(json_get "$T/job.json" "(d['state'], d['done'], d['percent'])")" '["paused", 6, 60.0]' "job 1 at manager 2"

note "restart manager 1: nothing lost; the job resumes and ends"
kill "$PID1"
wait "$PID1" 2>/dev/null || true
MANAGER_PORT=$P1
manager_start
assert_eq "$(at_status "$P1" admin POST /jobs/1/resume)" 200 "resume at manager 1"
at "$P2" h1 GET '/agent/jobs?wait=5' | sed -n 1p >"$T/claim.json"
assert_eq "$(json_get "$T/claim.json" "(d['id'], d['attempts'])")" '[1, 2]' "the resumed job, claimed at manager 2"
assert_eq "$(at_status "$P1" h1 POST /agent/jobs/1/done '{"result":"done","message":"ok"}')" 200 "done"
at "$P2" admin GET /jobs/1 | sed -n 1p >"$T/job.json"
assert_eq "$(json_get "$T/job.json" "(d['state'], d['percent'])")" '["done", 100.0]' "job 1 at the end"

note "PostgreSQL restarts: the managers connect again"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -m fast -w restart \
        -o "-k $T/pg/sock -c listen_addresses=''" >/dev/null || die "PostgreSQL did not restart"
for p in "$P1" "$P2"; do
        for _ in 1 2 3; do [ "$(at_status "$p" admin GET /jobs/1)" = 200 ] && break; done
        assert_eq "$(at_status "$p" admin GET /jobs/1)" 200 "manager on port $p after PostgreSQL's restart"
done

note "events: append-only in the database, streamed across managers"
! psq -c "UPDATE events SET message = 'x'" 2>"$T/upd.err" || die "PostgreSQL let an event be changed"
assert_file_contains "$T/upd.err" "append-only" "refusal of an UPDATE"
! psq -c "DELETE FROM events" 2>/dev/null || die "PostgreSQL let an event be deleted"
for _ in $(seq 50); do grep -q '"job-done"' "$T/follow.jsonl" 2>/dev/null && break; sleep 0.1; done
assert_eq "$(grep -o '"kind":"[a-z-]*"' "$T/follow.jsonl" | cut -d'"' -f4 | paste -sd' ')" \
        "host-registered access-denied policy-set policy-set provider-registered job-queued job-started job-pause-requested job-paused job-resumed job-started job-done" \
        "the stream at manager 2"
