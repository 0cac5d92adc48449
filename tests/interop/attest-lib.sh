# Shared by the trusted key provider tests (sourced after ../lib.sh and keys-lib.sh):
# swtpm instances as host TPMs, and a vmcrypt-kms with two client identities and a
# short attestation nonce lifetime. See docs/attestation.md.
require_cmd swtpm swtpm_setup swtpm_localca tpm2_pcrextend tpm2_pcrreset
[ -x "${VMCRYPT_KMS:-}" ] || die "vmcrypt-kms not found at '${VMCRYPT_KMS:-}': build it"
export TSS2_LOG=all+NONE # the TSS's own warnings (tpm2-tools) are not the test's output

# ---- TPMs -------------------------------------------------------------------
declare -gA TPM_PORT TPM_PID
tpm_start() { # name: an swtpm on a free port, state in $T/tpm-NAME
        local name=$1 dir=$T/tpm-$1
        mkdir -p "$dir"
        # The swtpm TCTI talks to PORT and to the control channel on PORT+1.
        [ -n "${TPM_PORT[$name]:-}" ] || TPM_PORT[$name]=$("$PY" -c '
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass')
        swtpm socket --tpm2 --tpmstate dir="$dir" --server type=tcp,port="${TPM_PORT[$name]}",bindaddr=127.0.0.1 \
                --ctrl type=tcp,port="$((TPM_PORT[$name] + 1))",bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
                --log file="$dir/log",level=1 &
        TPM_PID[$name]=$!
        track_pid "${TPM_PID[$name]}"
        wait_port "${TPM_PORT[$name]}" 10 || die "swtpm $name did not start: $(cat "$dir/log")"
}
tpm_stop() {
        kill "${TPM_PID[$1]}" && wait "${TPM_PID[$1]}" 2>/dev/null || true
}
tcti() { echo "swtpm:host=127.0.0.1,port=${TPM_PORT[$1]}"; }
tpm2() { # name tool args...: tpm2-tools against TPM name
        local name=$1 tool=$2
        shift 2
        TPM2TOOLS_TCTI=$(tcti "$name") "$tool" "$@" >/dev/null
}

# ---- KMS ----------------------------------------------------------------------
# attest_kms_start: vmcrypt-kms in $K for clients host-a and host-b; sets KMS_PORT,
# KMS_PID, AUDIT.
attest_kms_start() {
        K=$T/kms
        "$VMCRYPT_KMS" init "$K" --client host-a --client host-b --listen 127.0.0.1:0 >/dev/null || die "init failed"
        # Short nonces: the expiry test waits them out.
        echo "attestation-nonce-ttl = 3" >>"$K/kms.conf"
        "$VMCRYPT_KMS" serve --config "$K/kms.conf" >"$K/serve.out" 2>"$K/serve.err" &
        KMS_PID=$!
        track_pid "$KMS_PID"
        for _ in $(seq 1 200); do grep -q '^listening on ' "$K/serve.out" && break; sleep 0.05; done
        KMS_PORT=$(sed -n 's/^listening on //p' "$K/serve.out")
        [ -n "$KMS_PORT" ] || die "vmcrypt-kms did not start: $(cat "$K/serve.err")"
        AUDIT=$K/audit.log
}
kadm() { "$VMCRYPT_KMS" "$@" --config "$K/kms.conf"; }

# providers FILE CN TPM [PCRS [BK_CACHE]]: a trusted provider "tkp" for identity CN
# and TPM, host group "lab".
providers() {
        local cache=
        [ -z "${5:-}" ] || cache=", \"bk_cache\": \"$5\""
        cat >"$1" <<JSON
{ "default": "tkp",
  "providers": {
    "tkp": { "type": "trusted", "endpoints": [ "127.0.0.1:$KMS_PORT" ],
             "ca": "$K/ca.crt", "cert": "$K/client-$2.crt", "key": "$K/client-$2.key",
             "tcti": "$(tcti "$3")", "pcrs": "${4:-0,7,16}", "group": "lab"$cache } } }
JSON
}

# enroll NAME PROVIDERS: vmcrypt host enroll; sets HOST_ID.
enroll() {
        expect_rc 0 "$1" vmc host enroll --providers "$2"
        HOST_ID=$(sed -n 's/^host \([^ ]*\) enrolled.*/\1/p' "$T/$1.out")
        [ -n "$HOST_ID" ] || die "no host id from enroll: $(cat "$T/$1.out")"
}
