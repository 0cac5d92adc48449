# Shared helpers for the fleet tests (tests/interop/fleet*.sh); sourced after
# ../lib.sh, keys-lib.sh and vm-lib.sh. Each agent runs in its own network
# namespace as its own host, joined to the test's root namespace by a veth pair;
# the manager and the key server listen on the first pair's root-side address,
# which every namespace reaches through its default route.

require_fleet() {
        require_cmd ip curl openssl
        [ -x "${VMCRYPT_MANAGER:-}" ] || die "vmcrypt-manager not found at '${VMCRYPT_MANAGER:-}': build it"
        [ -x "${VMCRYPT_AGENT:-}" ] || die "vmcrypt-agent not found at '${VMCRYPT_AGENT:-}': build it"
        ip netns list >/dev/null 2>&1 || die "ip netns does not work here (root needed)"
}

FLEET_NS=()
# A /24 of 10.198.0.0/16 for this run: root side .4i+1, namespace side .4i+2.
FLEET_NET=10.198.$(( ($$ % 250) + 1 ))

# fleet_ns I: namespace vmc-$$-hI with a veth pair; sets NS_I and its root-side
# address. The first one's root-side address is FLEET_IP (manager, key server).
fleet_ns() {
        local i=$1 ns="vmc-$$-h$1" a b
        a=$FLEET_NET.$((4 * i + 1))
        b=$FLEET_NET.$((4 * i + 2))
        ip netns add "$ns" || die "ip netns add $ns failed"
        FLEET_NS+=("$ns")
        ip link add "vmr$$h$i" type veth peer name "vmn$$h$i" || die "cannot create a veth pair"
        ip link set "vmn$$h$i" netns "$ns"
        ip addr add "$a/30" dev "vmr$$h$i"
        ip link set "vmr$$h$i" up
        ip -n "$ns" addr add "$b/30" dev "vmn$$h$i"
        ip -n "$ns" link set "vmn$$h$i" up
        ip -n "$ns" link set lo up
        ip -n "$ns" route add default via "$a"
}

fleet_ns_cleanup() {
        local ns
        for ns in "${FLEET_NS[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
        FLEET_NS=()
}

# manager_wait PORT: until the manager answers TLS on FLEET_IP:PORT.
manager_wait() {
        for _ in $(seq 100); do
                curl -s -o /dev/null --max-time 1 --cacert "$M/ca.crt" --cert "$M/client-admin.crt" \
                        --key "$M/client-admin.key" "https://$FLEET_IP:$1/hosts" && return 0
                sleep 0.1
        done
        die "vmcrypt-manager did not answer on $FLEET_IP:$1: $(tail -5 "$T/manager.log")"
}

# manager_start: serve $M/manager.conf; sets MANAGER_PID.
manager_start() {
        "$VMCRYPT_MANAGER" serve --config "$M/manager.conf" --log-level debug >>"$T/manager.log" 2>&1 &
        MANAGER_PID=$!
        track_pid "$MANAGER_PID"
        manager_wait "$MANAGER_PORT"
}

# api AS METHOD PATH [BODY]: curl the API with client AS's certificate; prints the
# body, then the HTTP status on its own last line.
api() {
        local who=$1 method=$2 path=$3 body=${4:-}
        curl -s -N --max-time 30 --cacert "$M/ca.crt" --cert "$M/client-$who.crt" --key "$M/client-$who.key" \
                -X "$method" ${body:+-H 'Content-Type: application/json' --data "$body"} \
                -w '\n%{http_code}\n' "https://$FLEET_IP:$MANAGER_PORT$path"
}

# api_status AS METHOD PATH [BODY]: only the HTTP status.
api_status() { api "$@" | tail -1; }

# agent_start I CONF: vmcrypt-agent for host hI in its namespace; sets AGENT_PID[I].
declare -A AGENT_PID
agent_start() {
        local i=$1 conf=$2
        ip netns exec "vmc-$$-h$i" "$VMCRYPT_AGENT" --config "$conf" --log-level debug >>"$T/agent-h$i.log" 2>&1 &
        AGENT_PID[$i]=$!
        track_pid "${AGENT_PID[$i]}"
}

# mc ARGS...: the vmcrypt CLI as the admin.
mc() { "$VMCRYPT" "$@" --manager-config "$M/admin.conf"; }

# job_json ID: GET /jobs/ID into $T/job.json.
job_json() { mc job show --json "$1" >"$T/job.json" || die "job show $1 failed"; }
