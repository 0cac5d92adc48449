# Shared helpers for the key provider interop tests (tests/interop/keys-*.sh);
# sourced after ../lib.sh. Starts real KMIP servers (vmcrypt-kms, PyKMIP) on free
# ports, writes providers.json files, and runs KMS-side admin actions (revoke,
# destroy) through PyKMIP's client. Nothing here writes key material to a file:
# unlock secrets travel on pipes, KEKs stay inside the KMS or a Python process.

KEYS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

require_keys_cli() {
        require_vmcrypt
        "$VMCRYPT" disk unlock --help >/dev/null 2>&1 ||
                die "'$VMCRYPT disk unlock' is missing: this build has no key commands"
        "$VMCRYPT" provider --help >/dev/null 2>&1 ||
                die "'$VMCRYPT provider' is missing: this build has no provider commands"
        [ -x "$PY" ] && "$PY" -c 'import kmip' 2>/dev/null ||
                die "$PY cannot import kmip: run scripts/deps.sh (python3-pykmip)"
        require_cmd cryptsetup openssl
}

free_port() {
        "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port [seconds]
        local port=$1 n=$(( ${2:-20} * 20 ))
        for _ in $(seq 1 "$n"); do
                "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return 0
                sleep 0.05
        done
        return 1
}

# kms_vmcrypt_start DIR CLIENT...: init a vmcrypt-kms state dir and serve it; sets
# KMS_PORT and KMS_PID. Client certs are DIR/client-CN.{crt,key}, CA DIR/ca.crt.
kms_vmcrypt_start() {
        local dir=$1 args=() c
        shift
        [ -x "${VMCRYPT_KMS:-}" ] || die "vmcrypt-kms not found at '${VMCRYPT_KMS:-}': build it"
        for c in "$@"; do args+=(--client "$c"); done
        "$VMCRYPT_KMS" init "$dir" "${args[@]}" --listen 127.0.0.1:0 >/dev/null || die "vmcrypt-kms init failed"
        : >"$dir/serve.out"
        "$VMCRYPT_KMS" serve --config "$dir/kms.conf" >"$dir/serve.out" 2>"$dir/serve.err" &
        KMS_PID=$!
        track_pid "$KMS_PID"
        for _ in $(seq 1 200); do
                if grep -q '^listening on ' "$dir/serve.out"; then
                        KMS_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$dir/serve.out")
                        [ -n "$KMS_PORT" ] || KMS_PORT=$(sed -n 's/^listening on //p' "$dir/serve.out")
                        return 0
                fi
                kill -0 "$KMS_PID" 2>/dev/null || die "vmcrypt-kms exited at start: $(cat "$dir/serve.err")"
                sleep 0.05
        done
        die "vmcrypt-kms did not start listening: $(cat "$dir/serve.err")"
}

# make_pki DIR CN...: a CA, a server cert for 127.0.0.1 and client certs (clientAuth),
# as PyKMIP wants them (notes/machine.md section 5). Extra: DIR/client-CN.{crt,key}.
make_pki() {
        local dir=$1 cn
        shift
        mkdir -p "$dir"
        (
                cd "$dir"
                openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=test-ca \
                        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
                openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
                printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
                openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 \
                        -extfile server.ext 2>/dev/null
                printf 'extendedKeyUsage=clientAuth\n' >client.ext
                for cn in "$@"; do
                        openssl req -newkey rsa:2048 -nodes -keyout "client-$cn.key" -out "client-$cn.csr" \
                                -subj "/CN=$cn" 2>/dev/null
                        openssl x509 -req -in "client-$cn.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
                                -out "client-$cn.crt" -days 30 -extfile client.ext 2>/dev/null
                done
                chmod 600 ./*.key
        ) || die "could not make test certificates in $dir"
}

# kms_pykmip_start DIR CN...: PyKMIP's server with its own PKI in DIR; sets KMS_PORT.
kms_pykmip_start() {
        local dir=$1
        shift
        [ -x /usr/bin/pykmip-server ] || die "/usr/bin/pykmip-server is missing: run scripts/deps.sh (python3-pykmip)"
        make_pki "$dir" "$@"
        KMS_PORT=$(free_port)
        mkdir -p "$dir/policies" "$dir/log"
        cat >"$dir/server.conf" <<CONF
[server]
hostname=127.0.0.1
port=$KMS_PORT
certificate_path=$dir/server.crt
key_path=$dir/server.key
ca_path=$dir/ca.crt
auth_suite=TLS1.2
policy_path=$dir/policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$dir/pykmip.db
CONF
        # Its own process group: PyKMIP's server leaves processes behind when only the
        # first one is killed, so the cleanup kills the group (a negative pid).
        setsid /usr/bin/pykmip-server -f "$dir/server.conf" -l "$dir/log/server.log" >/dev/null 2>&1 &
        KMS_PID=$!
        track_pid "-$KMS_PID"
        wait_port "$KMS_PORT" 30 || die "PyKMIP server did not listen on $KMS_PORT: $(tail -5 "$dir/log/server.log" 2>/dev/null)"
}

# write_providers FILE NAME PKI_DIR CN ENDPOINTS [WRAP]: a providers.json with one kmip
# provider (ENDPOINTS: comma-separated host:port list).
write_providers() {
        local file=$1 name=$2 pki=$3 cn=$4 eps=$5 wrap=${6:-auto} list="" e
        IFS=, read -ra _eps <<<"$eps"
        for e in "${_eps[@]}"; do list+="${list:+, }\"$e\""; done
        cat >"$file" <<JSON
{ "default": "$name",
  "providers": {
    "$name": { "type": "kmip", "endpoints": [ $list ],
               "ca": "$pki/ca.crt", "cert": "$pki/client-$cn.crt", "key": "$pki/client-$cn.key",
               "connect_timeout_ms": 2000, "timeout_ms": 5000, "wrap": "$wrap" } } }
JSON
}

# kmip_admin PKI_DIR CN PORT ACTION UID: revoke | destroy | state | attrs, via PyKMIP.
kmip_admin() {
        "$PY" "$KEYS_HERE/keys-kmip.py" "$@"
}

# make_luks IMG TYPE PASSFILE [SIZE]: a LUKS volume of random data made by cryptsetup
# with a fast KDF; prints nothing.
make_luks() {
        local img=$1 type=$2 pass=$3 size=${4:-8M}
        make_random_image "$img" "$size"
        cs reencrypt --encrypt --type "$type" --reduce-device-size 4M --pbkdf pbkdf2 \
                --pbkdf-force-iterations 1000 --key-file "$pass" "$img" >/dev/null 2>&1 ||
                cs luksFormat --type "$type" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$pass" "$img" \
                        >/dev/null || die "cryptsetup could not format $img"
}

# token_kek IMG [HDR]: the KEK id of the (first) vmcrypt token, from cryptsetup's own view.
token_field() { # img field
        cryptsetup luksDump --dump-json-metadata "$1" 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for t in sorted(d["tokens"], key=int):
    if d["tokens"][t]["type"] == "vmcrypt":
        print(d["tokens"][t][sys.argv[1]]); break
' "$2"
}

# scan_for_plaintext DIR PKI CN PORT KEKS...: reads unlock secrets (one per line) on
# stdin; fails if any secret or KEK appears in any file under DIR, raw, hex or base64.
scan_for_plaintext() {
        "$PY" "$KEYS_HERE/keys-kmip.py" "$2" "$3" "$4" scan "$1" "${@:5}"
}

# keys_done: call last in a passing test. lib.sh's cleanup kills the servers we
# started, and its ERR trap would report that kill as a failure; the test is over.
keys_done() {
        trap - ERR
}
