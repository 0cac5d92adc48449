#!/usr/bin/env bash
# Crypto privileges and the key provider inventory through a real manager and
# agent (docs/fleet.md). Roles in manager.conf: bad role lines stop the manager
# with a message naming what is known; a custom role "decryptor" has decrypt
# alone. A no-crypto-admin certificate sets policies but may neither encrypt
# nor register a provider (403, access-denied events naming the privilege); the
# decryptor decrypts a VM (every byte back) but may not encrypt, nor resume an
# encrypt job. GET /me and `vmcrypt whoami` say who is who. Bearer tokens:
# issued with a role (never the agent's), kept as a SHA-256; a session without a
# certificate is answered by its token's role, or 401 without an event when it
# has none, a wrong one or an expired one. Host h1's agent
# reports its providers.json (a vmcrypt-kms provider and a native one): the kms
# provider reachable, then unreachable (with an event) once the key server
# stops; registrations sit beside the reports, and flag what is missing.
# Certificates that end within 30 days (h1's for the key server, h3's agent
# certificate, the manager's own) are flagged and told of in one event each.
# SIGHUP applies a removed token and a revoked certificate at once, also to an
# open event stream; a manager.conf that does not read is refused. --renew
# replaces a token and an agent certificate; the old ones stop.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
require_keys_cli
require_fleet
FLEET_IP=127.0.0.1
MANAGER_PORT=$(free_port)

note "key server for h1, and h1's providers.json (kms, and a native one not yet initialised)"
kms_vmcrypt_start "$T/kms" h1
# h1's client certificate for the key server ends in 12 days (told below).
mv "$T/kms/client-h1.crt" "$T/kms/client-h1-long.crt"
mv "$T/kms/client-h1.key" "$T/kms/client-h1-long.key"
"$VMCRYPT_KMS" issue-client "$T/kms" h1 --days 12 >/dev/null || die "issue-client h1 failed"
write_providers "$T/providers.json" kms "$T/kms" h1 "127.0.0.1:$KMS_PORT"
"$PY" - "$T/providers.json" "$T/native" <<'PYEOF' || die "cannot add the native provider"
import json, sys
d = json.load(open(sys.argv[1]))
d["providers"]["local"] = {"type": "native", "state_dir": sys.argv[2], "key_file": sys.argv[2] + ".key"}
json.dump(d, open(sys.argv[1], "w"))
PYEOF

note "manager: roles in manager.conf"
M=$T/manager
expect_rc 0 init "$VMCRYPT_MANAGER" init "$M" --agent h1 --agent h2 --listen "$FLEET_IP:$MANAGER_PORT"
expect_rc 2 issue-unknown "$VMCRYPT_MANAGER" issue "$M" dec --role decryptor
assert_file_contains "$T/issue-unknown.err" "unknown role 'decryptor': the roles are admin, operator, auditor, agent, no-crypto-admin" \
        "issuing with an undefined role"
echo "role decryptor = decrypt" >>"$M/manager.conf"
expect_rc 0 issue-dec "$VMCRYPT_MANAGER" issue "$M" dec --role decryptor
expect_rc 0 issue-nca "$VMCRYPT_MANAGER" issue "$M" nca --role no-crypto-admin
# An agent whose certificate ends in 9 days (told below).
expect_rc 0 issue-h3 "$VMCRYPT_MANAGER" issue "$M" h3 --role agent --days 9
# refused_conf "LINE|MESSAGE": manager.conf with LINE added stops the manager
# at start, saying MESSAGE.
refused_conf() {
        cp "$M/manager.conf" "$T/bad.conf"
        echo "${1%%|*}" >>"$T/bad.conf"
        expect_rc 2 bad-conf "$VMCRYPT_MANAGER" serve --config "$T/bad.conf"
        assert_file_contains "$T/bad-conf.err" "${1#*|}" "manager.conf with '${1%%|*}'"
}
for bad in "role fly = read fly|unknown privilege 'fly': the privileges are read, encrypt, decrypt, rekey, start, manage-policies, manage-providers, agent" \
           "role admin = read|role admin is built in" \
           "role decryptor = read|role decryptor is defined twice" \
           "client = eve thief|client eve has role 'thief', which is neither built in nor defined.*the roles are admin, operator, auditor, agent, no-crypto-admin, decryptor"; do
        refused_conf "$bad"
done
note "bearer tokens: issued beside certificates, only their SHA-256 in manager.conf"
expect_rc 2 tok-agent "$VMCRYPT_MANAGER" issue "$M" bot --role agent --token
assert_file_contains "$T/tok-agent.err" "role agent holds the agent privilege: an agent authenticates with its host's certificate" \
        "a token for an agent"
expect_rc 0 tok-ci "$VMCRYPT_MANAGER" issue "$M" ci --role auditor --token
expect_rc 0 tok-ops "$VMCRYPT_MANAGER" issue "$M" ops --role operator --token --days 1
assert_eq "$(stat -c %a "$M/token-ci")" 600 "the token file's mode"
assert_file_contains "$M/token-ci" "^[0-9a-f]{64}$" "the token: 256 random bits in hex"
tok=$(cat "$M/token-ci")
assert_eq "$(grep -rl -- "$tok" "$M" | sort | tr '\n' ' ')" "$M/token-ci " "files holding the token"
assert_file_contains "$M/manager.conf" "^token = ci auditor $(printf %s "$tok" | sha256sum | cut -c1-64) [0-9]+$" \
        "manager.conf: the token's SHA-256"
assert_file_contains "$M/ci.conf" "^token = token-ci$" "the client settings name the token file"
expect_rc 1 tok-again "$VMCRYPT_MANAGER" issue "$M" ci --role auditor --token
assert_file_contains "$T/tok-again.err" "ci is a client of .*manager.conf already \\(a token\\)" "issuing a token twice"
# A token that ended in 1970, for the refusal below.
printf 'expired' >"$T/token-old"
echo "token = old auditor $(printf expired | sha256sum | cut -c1-64) 1000" >>"$M/manager.conf"
h64=$(printf x | sha256sum | cut -c1-64)
for bad in "token = t1 auditor abc 1|token = NAME ROLE SHA256 EXPIRES" \
           "token = dec auditor $h64 99999999999|client dec is listed twice \\(a name is one client: a certificate or a token\\)" \
           "token = t2 agent $h64 99999999999|token t2 has role 'agent', which holds the agent privilege"; do
        refused_conf "$bad"
done
# Sessions without a certificate count as unauthenticated until a token: a
# short deadline shows it below.
echo "handshake-timeout = 3" >>"$M/manager.conf"
expect_rc 0 routes "$VMCRYPT_MANAGER" routes
assert_file_contains "$T/routes.out" "^POST /jobs/\{id\}/resume encrypt\|decrypt\|rekey\|start$" "the routes' privileges"
assert_file_contains "$T/routes.out" "^PUT /providers/\{name\} manage-providers$" "the routes' privileges"
assert_file_contains "$T/routes.out" "^POST /vms/\{name\}/start start$" "the routes' privileges"
manager_start

note "who is who: GET /me and vmcrypt whoami"
expect_rc 0 whoami-nca "$VMCRYPT" whoami --manager-config "$M/nca.conf"
assert_file_contains "$T/whoami-nca.out" "^role: +no-crypto-admin$" "whoami's role"
assert_file_contains "$T/whoami-nca.out" "^privileges: +read start manage-policies$" "whoami's privileges"
api dec GET /me >"$T/me.out"
assert_eq "$(tail -1 "$T/me.out")" 200 "GET /me as the decryptor"
assert_eq "$(head -1 "$T/me.out")" '{"cn":"dec","role":"decryptor","privileges":["decrypt"],"credential":"certificate"}' \
        "GET /me as the decryptor"

note "bearer tokens: TLS without a certificate, the token names the caller"
expect_rc 0 whoami-ci "$VMCRYPT" whoami --manager-config "$M/ci.conf"
assert_file_contains "$T/whoami-ci.out" "^token: +ci$" "whoami with a token"
assert_file_contains "$T/whoami-ci.out" "^role: +auditor$" "the token's role"
# tok() AUTHFILE METHOD PATH: curl without a client certificate, the header from a file.
tok() {
        curl -s --max-time 30 --cacert "$M/ca.crt" ${1:+-H @"$1"} -X "$2" -D "$T/tok.headers" \
                -w '\n%{http_code}\n' "https://$FLEET_IP:$MANAGER_PORT$3"
}
printf 'Authorization: Bearer %s\n' "$(cat "$M/token-ci")" >"$T/auth-ci"
tok "$T/auth-ci" GET /me >"$T/me-ci.out"
assert_eq "$(head -1 "$T/me-ci.out")" '{"cn":"ci","role":"auditor","privileges":["read"],"credential":"token"}' \
        "GET /me with the auditor's token"
api admin GET /events >"$T/events-before.out"
before=$(head -1 "$T/events-before.out" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$(tok "$T/auth-ci" POST /vms/vm1/encrypt | tail -1)" 403 "the auditor's token encrypts"
tok "" GET /vms >"$T/tok-none.out"
assert_eq "$(tail -1 "$T/tok-none.out")" 401 "no certificate, no token"
assert_file_contains "$T/tok-none.out" "no client certificate and no bearer token" "why"
assert_file_contains "$T/tok.headers" "^WWW-Authenticate: Bearer" "the 401's challenge"
printf 'Authorization: Bearer %s\n' "$(printf %064d 7)" >"$T/auth-bad"
tok "$T/auth-bad" GET /vms >"$T/tok-bad.out"
assert_eq "$(tail -1 "$T/tok-bad.out")" 401 "a token the manager does not know"
assert_file_contains "$T/tok-bad.out" "the bearer token is not one of this manager's" "why"
printf 'Authorization: Bearer expired\n' >"$T/auth-old"
tok "$T/auth-old" GET /vms >"$T/tok-old.out"
assert_eq "$(tail -1 "$T/tok-old.out")" 401 "an expired token"
assert_file_contains "$T/tok-old.out" "the bearer token has expired" "why"
api admin GET /events >"$T/events-after.out"
assert_eq "$(head -1 "$T/events-after.out" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" "$((before + 1))" \
        "events: the token's refusal is audited, an unauthenticated request is not"
assert_file_contains "$T/events-after.out" '"actor":"ci","host":"","vm":"","job":0,"kind":"access-denied","message":"refused POST /vms/vm1/encrypt: ci \(role auditor\) lacks the privilege encrypt' \
        "the token's refusal names the token"
"$PY" - "$FLEET_IP" "$MANAGER_PORT" "$M/ca.crt" <<'PYEOF' >"$T/idle.out" || die "idle session: $(cat "$T/idle.out")"
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))))
s.settimeout(20)
t0 = time.monotonic()
try:
    data = s.recv(100)
except (ConnectionResetError, ssl.SSLError):
    data = b""
took = time.monotonic() - t0
print("closed after %.1f s" % took)
sys.exit(0 if data == b"" and took < 10 else 1)
PYEOF
assert_file_contains "$T/idle.out" "^closed after [0-9.]+ s$" "a session without a certificate that sends nothing: closed at the deadline"
expect_rc 0 tok-vms "$VMCRYPT" host list --manager "https://$FLEET_IP:$MANAGER_PORT" --ca "$M/ca.crt" --token "$M/token-ops"
expect_rc 2 tok-both "$VMCRYPT" host list --manager "https://$FLEET_IP:$MANAGER_PORT" --ca "$M/ca.crt" \
        --token "$M/token-ops" --cert "$M/client-admin.crt" --key "$M/client-admin.key"
assert_file_contains "$T/tok-both.err" "a client certificate \(--cert, --key\) or a token \(--token\), not both" "both credentials"
chmod 644 "$M/token-ops"
expect_rc 8 tok-mode "$VMCRYPT" whoami --manager-config "$M/ops.conf"
assert_file_contains "$T/tok-mode.err" "must be yours and readable by you alone \(chmod 600" "a token others may read"
chmod 600 "$M/token-ops"

note "h1: an agent with a VM (test driver, shut off) and its providers; h2: no agent"
make_random_image "$T/os.img" 4M
make_random_image "$T/data.img" 2M
OS_SHA=$(sha256_range "$T/os.img")
DATA_SHA=$(sha256_range "$T/data.img")
{
        echo "<node><domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
        echo "<name>vm1</name><uuid>5eed0000-0000-4000-8000-00000000b0b1</uuid>"
        echo "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>"
        echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$T/os.img'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>"
        echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$T/data.img'/><target dev='vdb' bus='virtio'/></disk>"
        echo "</devices><test:runstate>5</test:runstate></domain></node>"
} >"$T/node.xml"
sed "s#= client-#= $M/client-#; s#^ca = .*#ca = $M/ca.crt#" "$M/h1.conf" >"$T/agent-h1.conf"
printf 'state-dir = %s\nlibvirt = test://%s\nproviders = %s\npoll-seconds = 1\ninventory-seconds = 1\n' \
        "$T/agent-h1-state" "$T/node.xml" "$T/providers.json" >>"$T/agent-h1.conf"
"$VMCRYPT_AGENT" --config "$T/agent-h1.conf" --log-level debug >>"$T/agent-h1.log" 2>&1 &
AGENT_PID=$!
track_pid "$AGENT_PID"
# h2 registers and reports a VM by hand: its jobs wait, as no agent takes them.
assert_eq "$(api_status h2 POST /agent/register '{}')" 200 "h2 registers"
assert_eq "$(api_status h2 POST /agent/inventory '{"vms":[{"name":"ghost","uuid":"g1","disks":[]}]}')" 200 \
        "h2's inventory"

# wait_kms_state STATE: until GET /providers (in providers.out) has h1 report kms
# as STATE, at most 20 s.
wait_kms_state() {
        for _ in $(seq 100); do
                api admin GET /providers | head -1 >"$T/providers.out"
                [ "$(json_get "$T/providers.out" "[h['state'] for p in d if p['name'] == 'kms' for h in p['hosts']]")" = \
                        "[\"$1\"]" ] && break
                sleep 0.2
        done
}

note "GET /providers: h1's providers as it reports them"
wait_kms_state reachable
assert_eq "$(json_get "$T/providers.out" "[(p['name'], [(h['host'], h['kind'], h['default'], h['state'], h['endpoints']) for h in p['hosts']]) for p in d]")" \
        "[[\"kms\", [[\"h1\", \"kmip\", true, \"reachable\", [\"127.0.0.1:$KMS_PORT\"]]]], [\"local\", [[\"h1\", \"native\", false, \"error\", []]]]]" \
        "the providers h1 reports"
assert_file_contains "$T/providers.out" "no primary key yet: run 'vmcrypt provider init local'" "why local is not usable"
if grep -Eq "client-h1|\.key|$T/native" "$T/providers.out"; then die "a path reached the manager: $(cat "$T/providers.out")"; fi
expect_rc 0 plocal "$VMCRYPT" provider list --providers "$T/providers.json"
assert_file_contains "$T/plocal.out" "^kms \(default\)	kmip	127.0.0.1:$KMS_PORT$" "the local list: kms"
assert_file_contains "$T/plocal.out" "^local	native	$T/native	not initialised$" "the local list: local"
expect_rc 4 pcheck "$VMCRYPT" provider list --providers "$T/providers.json" --check
assert_file_contains "$T/pcheck.out" "^local	native	$T/native	not initialised$" "the list before the check"
assert_file_contains "$T/pcheck.out" "^kms: usable \([0-9]+ ms\)$" "the local check of kms"
assert_file_contains "$T/pcheck.out" "^local: NOT usable .*vmcrypt provider init local" "the local check of local"
expect_rc 0 plist "$VMCRYPT" provider list --manager-config "$M/admin.conf"
assert_file_contains "$T/plist.out" "^kms +kmip +no +h1 +yes +reachable +[0-9]+s ago +127.0.0.1:$KMS_PORT$" \
        "vmcrypt provider list --manager-config"

note "certificates told of before they end: h1's for the key server, h3's agent certificate"
assert_file_contains "$T/pcheck.out" "^kms: this host's client certificate ends ! [0-9-]{10} \(12 days\)$" \
        "the local check: h1's certificate for kms"
assert_file_contains "$T/plist.out" "^  ! kms: h1's client certificate for it ends on [0-9-]{10}, in 12 days$" \
        "the fleet's providers flag it"
assert_eq "$(api_status h3 POST /agent/register '{}')" 200 "h3 registers"
assert_eq "$(api_status h3 POST /agent/heartbeat '{}')" 200 "h3's heartbeat"
expect_rc 0 hosts "$VMCRYPT" host list --manager-config "$M/admin.conf"
assert_file_contains "$T/hosts.out" "^h3 .* ! [0-9-]{10} \(9 days\)$" "host list: h3's certificate"
assert_file_contains "$T/hosts.out" "^h1 .* [0-9-]{10} \(8[0-9][0-9] days\)$" "host list: h1's certificate"
api admin GET /events | head -1 >"$T/events-cert.out"
assert_eq "$(json_get "$T/events-cert.out" "[e['message'].split(' on ')[0] + ' ' + e['message'].split(', ')[1] for e in d if e['kind'] in ('certificate-expiring', 'provider-certificate-expiring')]")" \
        '["the client certificate of h1 for key provider kms expires in 12 days: have the key server'"'"'s CA issue a new one and put it in the host'"'"'s providers.json", "the certificate of h3'"'"'s agent expires in 9 days: renew it ('"'"'vmcrypt-manager issue DIR h3 --renew'"'"') and give the agent the new one"]' \
        "one event per certificate, however often it is seen"

note "no-crypto-admin: sets policies; may not encrypt nor register a provider"
assert_eq "$(api_status nca PUT /policies '{"scope":"default","volumes":"all"}')" 200 "nca sets a policy"
assert_eq "$(api_status nca POST /vms/vm1/encrypt)" 403 "nca encrypts"
expect_rc 8 nca-enc "$VMCRYPT" vm encrypt vm1 --manager-config "$M/nca.conf"
assert_file_contains "$T/nca-enc.err" "nca \(role no-crypto-admin\) lacks the privilege encrypt" "the CLI's refusal"
assert_eq "$(api_status nca PUT /providers/kms '{"kind":"kmip","endpoints":["127.0.0.1:1"]}')" 403 "nca registers"
expect_rc 8 nca-reg "$VMCRYPT" provider register kms kind=kmip endpoints=127.0.0.1:1 --manager-config "$M/nca.conf"
note "names the manager can never hold are usage errors, before any request"
expect_rc 2 badvm "$VMCRYPT" vm encrypt "$(printf 'vm\t1')" --manager-config "$M/admin.conf"
assert_file_contains "$T/badvm.err" "is not a VM name \\(1-200 printable characters" "a tab in a VM name"
expect_rc 2 badprov "$VMCRYPT" provider register 'k"ms' kind=kmip endpoints=127.0.0.1:1 --manager-config "$M/admin.conf"
assert_file_contains "$T/badprov.err" "is not a provider name" "a quote in a provider name"
api admin GET /events >"$T/events.out"
assert_file_contains "$T/events.out" '"actor":"nca","host":"","vm":"","job":0,"kind":"access-denied","message":"refused POST /vms/vm1/encrypt: nca \(role no-crypto-admin\) lacks the privilege encrypt' \
        "nca's encrypt audited"
assert_file_contains "$T/events.out" '"actor":"nca".*"kind":"access-denied","message":"refused PUT /providers/kms: [^"]*lacks the privilege manage-providers' \
        "nca's registration audited"
assert_eq "$(api admin GET /jobs | head -1)" "[]" "jobs after the refusals"

note "registration: the admin registers kms; policies then name registered providers only"
expect_rc 0 reg "$VMCRYPT" provider register kms kind=kmip "endpoints=127.0.0.1:$KMS_PORT" "description=the test KMS" \
        --manager-config "$M/admin.conf"
assert_eq "$(api_status nca PUT /policies '{"scope":"default","provider":"elsewhere"}')" 400 "a policy naming an unregistered provider"
api nca PUT /policies '{"scope":"default","provider":"elsewhere"}' >"$T/pol.out"
assert_file_contains "$T/pol.out" "key provider elsewhere is not registered with the fleet: use one of kms" "why"
assert_eq "$(api_status nca PUT /policies '{"scope":"default","provider":"kms"}')" 200 "a policy naming kms"
api admin GET /providers | head -1 >"$T/providers.out"
assert_eq "$(json_get "$T/providers.out" "[(p['name'], p['registered'] and p['registered']['description'], p['missing'], p['unregistered']) for p in d]")" \
        '[["kms", "the test KMS", ["h2", "h3"], false], ["local", null, [], true]]' "registered and reported side by side"
expect_rc 0 plist2 "$VMCRYPT" provider list --manager-config "$M/admin.conf"
assert_file_contains "$T/plist2.out" "^  ! kms: hosts without it in their providers.json: h2, h3$" "the missing host flagged"
assert_file_contains "$T/plist2.out" "^  ! local: not registered with the fleet" "the unknown provider flagged"
expect_rc 5 unreg "$VMCRYPT" provider unregister kms --manager-config "$M/admin.conf"
assert_file_contains "$T/unreg.err" "policy default names key provider kms" "unregistering a provider a policy names"
api admin GET /events >"$T/events.out"
assert_file_contains "$T/events.out" '"actor":"admin","host":"","vm":"","job":0,"kind":"provider-registered","message":"key provider kms registered: kind kmip' \
        "the registration's event"

note "the decryptor may not resume an encrypt job"
assert_eq "$(api_status admin POST /vms/ghost/encrypt)" 202 "an encrypt job for h2's VM (no agent takes it)"
GHOST_JOB=$(api admin GET /jobs | head -1 | "$PY" -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin) if j["vm"] == "ghost"][0])')
assert_eq "$(api_status admin POST "/jobs/$GHOST_JOB/pause")" 200 "the admin pauses it"
assert_eq "$(api_status dec POST "/jobs/$GHOST_JOB/resume")" 403 "the decryptor resumes an encrypt job"
expect_rc 8 dec-resume "$VMCRYPT" job resume "$GHOST_JOB" --manager-config "$M/dec.conf"
assert_file_contains "$T/dec-resume.err" "lacks the privilege encrypt: job $GHOST_JOB is a encrypt job" "the CLI's refusal"
api admin GET "/jobs/$GHOST_JOB" | head -1 >"$T/ghost.json"
assert_eq "$(json_get "$T/ghost.json" "d['state']")" paused "the encrypt job after the decryptor's attempt"
assert_eq "$(api_status admin POST "/jobs/$GHOST_JOB/cancel")" 200 "the admin cancels it"

note "the admin encrypts vm1; the decryptor may not encrypt, but decrypts it"
assert_eq "$(api_status dec POST /vms/vm1/encrypt)" 403 "the decryptor encrypts"
expect_rc 0 enc "$VMCRYPT" vm encrypt vm1 --wait --manager-config "$M/admin.conf"
assert_state "$T/os.img" "" encrypted
assert_state "$T/data.img" "" encrypted
api dec POST /vms/vm1/decrypt >"$T/dec.out"
assert_eq "$(tail -1 "$T/dec.out")" 202 "the decryptor decrypts"
DEC_JOB=$(json_get <(head -1 "$T/dec.out") "d['id']")
for _ in $(seq 300); do
        api admin GET "/jobs/$DEC_JOB" | head -1 >"$T/job.json"
        case $(json_get "$T/job.json" "d['state']") in done|failed|cancelled) break ;; esac
        sleep 0.2
done
assert_eq "$(json_get "$T/job.json" "(d['state'], d['actor'])")" '["done", "dec"]' "the decryptor's job: $(cat "$T/job.json")"
assert_eq "$(sha256_range "$T/os.img")" "$OS_SHA" "OS disk after the round trip"
assert_eq "$(sha256_range "$T/data.img")" "$DATA_SHA" "data disk after the round trip"

note "the key server stops: h1 reports kms unreachable, with an event"
kill "$KMS_PID"
wait "$KMS_PID" 2>/dev/null || true
wait_kms_state unreachable
assert_eq "$(json_get "$T/providers.out" "[h['state'] for p in d if p['name'] == 'kms' for h in p['hosts']]")" \
        '["unreachable"]' "kms from h1 once the key server is gone"
assert_file_contains "$T/providers.out" "no KMS of provider [^ ]*kms[^ ]* is reachable" "why kms is unreachable"
expect_rc 7 pcheck2 "$VMCRYPT" provider list --providers "$T/providers.json" --check
assert_file_contains "$T/pcheck2.out" "^kms: NOT usable .*no KMS of provider \"kms\" is reachable" "the local check, key server down"
expect_rc 0 plist3 "$VMCRYPT" provider list --manager-config "$M/admin.conf"
assert_file_contains "$T/plist3.out" "^kms +kmip +yes +h1 +yes +unreachable " "provider list with the key server down"
api admin GET /events >"$T/events.out"
assert_file_contains "$T/events.out" '"actor":"h1","host":"h1","vm":"","job":0,"kind":"provider-unreachable","message":"key provider kms on h1: unreachable' \
        "the unreachable event"

kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
note "SIGHUP: manager.conf read again; a removed token and a revoked certificate stop at once"
# nca follows the events across the reload: its stream ends when it loses read.
"$VMCRYPT" events --follow --manager-config "$M/nca.conf" >"$T/nca-follow.out" 2>&1 &
follow=$!
track_pid "$follow"
cp "$M/manager.conf" "$T/manager.conf.good"
echo "role broken = read fly" >>"$M/manager.conf"
kill -HUP "$MANAGER_PID"
for _ in $(seq 50); do grep -q "reload of .* refused" "$T/manager.log" && break; sleep 0.1; done
assert_file_contains "$T/manager.log" "reload of $M/manager.conf refused, the running configuration stays: .*unknown privilege 'fly'" \
        "a manager.conf that does not read"
expect_rc 0 whoami-kept "$VMCRYPT" whoami --manager-config "$M/ci.conf"
cp "$T/manager.conf.good" "$M/manager.conf"
sed -i '/^token = ci /d' "$M/manager.conf"
fp=$(openssl x509 -in "$M/client-nca.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
echo "revoked-client = $fp" >>"$M/manager.conf"
kill -HUP "$MANAGER_PID"
for _ in $(seq 50); do grep -q "reloaded $M/manager.conf" "$T/manager.log" && break; sleep 0.1; done
assert_file_contains "$T/manager.log" "reloaded $M/manager.conf: [0-9]+ clients \(2 with tokens\), 1 revoked" "the reload"
assert_eq "$(tok "$T/auth-ci" GET /me | tail -1)" 401 "the removed token, after the reload"
expect_rc 8 whoami-revoked "$VMCRYPT" whoami --manager-config "$M/nca.conf"
expect_rc 0 whoami-ops "$VMCRYPT" whoami --manager-config "$M/ops.conf"
for _ in $(seq 50); do kill -0 "$follow" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$follow" 2>/dev/null || die "nca's event stream outlived the revocation of its certificate"

note "renewal: a token and an agent certificate replaced, the old ones stop"
expect_rc 0 renew-ops "$VMCRYPT_MANAGER" issue "$M" ops --renew --days 30
assert_file_contains "$M/ops.conf" "^token = token-ops-[0-9]+$" "ops.conf names the new token"
expect_rc 8 whoami-new-early "$VMCRYPT" whoami --manager-config "$M/ops.conf"
kill -HUP "$MANAGER_PID"
for _ in $(seq 50); do
        "$VMCRYPT" whoami --manager-config "$M/ops.conf" >/dev/null 2>&1 && break
        sleep 0.1
done
expect_rc 0 whoami-renewed "$VMCRYPT" whoami --manager-config "$M/ops.conf"
printf 'Authorization: Bearer %s\n' "$(cat "$M/token-ops")" >"$T/auth-ops-old"
assert_eq "$(tok "$T/auth-ops-old" GET /me | tail -1)" 401 "the old token after the renewal"
expect_rc 2 renew-none "$VMCRYPT_MANAGER" issue "$M" nobody --renew
assert_file_contains "$T/renew-none.err" "names no client nobody" "renewing a client that is not there"
expect_rc 0 renew-h3 "$VMCRYPT_MANAGER" issue "$M" h3 --renew --days 100
old_fp=$(openssl x509 -in "$M/client-h3.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
assert_file_contains "$T/renew-h3.out" "^revoked-client = $old_fp$" "the old certificate's revocation line"
new_base=$(sed -n 's/^cert = \(.*\)\.crt$/\1/p' "$M/h3.conf")
h3new() { curl -s --max-time 30 --cacert "$M/ca.crt" --cert "$M/$new_base.crt" --key "$M/$new_base.key" \
                -X POST -d '{}' -w '\n%{http_code}\n' "https://$FLEET_IP:$MANAGER_PORT$1"; }
assert_eq "$(h3new /agent/heartbeat | tail -1)" 200 "h3's heartbeat with the renewed certificate"
expect_rc 0 hosts2 "$VMCRYPT" host list --manager-config "$M/admin.conf"
assert_file_contains "$T/hosts2.out" "^h3 .* [0-9-]{10} \(100 days\)$" "host list: h3's renewed certificate"
grep '^revoked-client' "$T/renew-h3.out" >>"$M/manager.conf"
kill -HUP "$MANAGER_PID"
for _ in $(seq 50); do [ "$(api_status h3 POST /agent/heartbeat '{}')" = 403 ] && break; sleep 0.1; done
assert_eq "$(api_status h3 POST /agent/heartbeat '{}')" 403 "h3's old certificate, revoked"
assert_eq "$(h3new /agent/heartbeat | tail -1)" 200 "h3's renewed certificate after the revocation"

note "a manager whose own server certificate ends in 5 days: a warning and an event"
M2=$T/manager2
M2_PORT=$(free_port)
expect_rc 0 init2 "$VMCRYPT_MANAGER" init "$M2" --listen "$FLEET_IP:$M2_PORT" --days 5
"$VMCRYPT_MANAGER" serve --config "$M2/manager.conf" >"$T/manager2.log" 2>&1 &
M2_PID=$!
track_pid "$M2_PID"
for _ in $(seq 100); do
        "$VMCRYPT" events --manager-config "$M2/admin.conf" >"$T/events2.out" 2>/dev/null &&
                grep -q certificate-expiring "$T/events2.out" && break
        sleep 0.1
done
assert_file_contains "$T/events2.out" "certificate-expiring +vmcrypt-manager +the manager's server certificate \(tls-cert\) expires on [0-9-]{10} [0-9:]{5} UTC, in 5 days" \
        "the manager's event of its own certificate"
assert_file_contains "$T/manager2.log" "the manager's server certificate \(tls-cert\) $M2/server.crt ends within 30 days" \
        "the manager's warning"
kill "$M2_PID"
wait "$M2_PID" 2>/dev/null || true

note "PASS"
