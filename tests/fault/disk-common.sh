# Helpers shared by the disk fault-injection tests (sourced after tests/lib.sh):
# starting images for each job, running a job, and the one rule every interrupted
# job must obey: an interrupted image is never openable as if it were finished, the
# job resumes, and at the end the plaintext is the original, byte for byte.
#
# Modes: shift (LUKS2, header in front: the data moves), detached (LUKS2, --header:
# the data stays in place) and luks1 (LUKS1, header in front).
# Files: $T/orig (the plaintext), $T/img (+ $T/img.hdr detached) the image under
# test, $T/img.key its key file.

SIZE=${SIZE:-$((40 << 20))}
# ONLY_OPS / ONLY_MODES narrow a run while debugging (e.g. ONLY_MODES=detached).
read -r -a OPS <<<"${ONLY_OPS:-encrypt decrypt reencrypt}"
read -r -a MODES <<<"${ONLY_MODES:-shift detached luks1}"

# Makes the plaintext and, per header mode, an encrypted copy to start decrypt and
# reencrypt jobs from.
fault_setup() {
        make_random_image "$T/orig" "$SIZE"
        ORIG_SHA=$(sha256_range "$T/orig")
        local mode h
        for mode in "${MODES[@]}"; do
                h=()
                [ "$mode" != detached ] || h=(--header "$T/enc-$mode.hdr")
                type_args "$mode"
                cp "$T/orig" "$T/enc-$mode"
                expect_rc 0 setup-$mode vmc disk encrypt "${TY[@]}" "${h[@]}" --new-key-file "$T/enc-$mode.key" \
                        --progress none "$T/enc-$mode"
        done
}

# hdr_args MODE: sets the array H to the header option for MODE.
hdr_args() {
        H=()
        [ "$1" != detached ] || H=(--header "$T/img.hdr")
}

# type_args MODE: sets the array TY to the --type option for MODE.
type_args() {
        TY=()
        [ "$1" != luks1 ] || TY=(--type luks1)
}

# prep OP MODE: puts the starting image of OP in place.
prep() {
        local op=$1 mode=$2
        rm -f "$T/img" "$T/img.hdr" "$T/img.key"
        if [ "$op" = encrypt ]; then
                cp "$T/orig" "$T/img"
        else
                cp "$T/enc-$mode" "$T/img"
                cp "$T/enc-$mode.key" "$T/img.key"
                [ "$mode" != detached ] || cp "$T/enc-$mode.hdr" "$T/img.hdr"
        fi
}

# key_args OP MODE: sets the array K to the key options for OP (encrypt makes a new
# key, of the format of MODE).
key_args() {
        if [ "$1" = encrypt ] && [ ! -e "$T/img.key" ]; then
                type_args "$2"
                K=("${TY[@]}" --new-key-file "$T/img.key")
        else
                K=(--key-file "$T/img.key")
        fi
}

# run_op OP MODE [extra options]: runs the job in the foreground, prints its exit code.
# Output goes to $T/op.out and $T/op.err.
run_op() {
        local op=$1 mode=$2 rc=0
        shift 2
        hdr_args "$mode"
        key_args "$op" "$mode"
        vmc disk "$op" "${H[@]}" "${K[@]}" --progress none "$@" "$T/img" >"$T/op.out" 2>"$T/op.err" || rc=$?
        echo "$rc"
}

# The state names of a job while it runs, before it starts and when it is done.
job_state() { case $1 in encrypt) echo encrypting ;; decrypt) echo decrypting ;; reencrypt) echo reencrypting ;; esac; }
start_state() { [ "$1" = encrypt ] && echo plain || echo encrypted; }
end_state() { [ "$1" = decrypt ] && echo plain || echo encrypted; }

# image_state MODE: the state status reports (with the detached header while it exists).
image_state() {
        local hdr=""
        [ "$1" != detached ] || [ ! -e "$T/img.hdr" ] || hdr=$T/img.hdr
        status_json "$T/img" "$hdr"
        json_get "$T/status.json" "d['state']"
}

# settle OP MODE WHAT: after an interruption, checks the image is in a state that
# makes sense, and brings the job to its end (resume, or a fresh start if the
# job never began). WHAT names the interruption in messages.
settle() {
        local op=$1 mode=$2 what=$3 s hdr=""
        [ "$mode" != detached ] || hdr=$T/img.hdr
        s=$(image_state "$mode")
        if [ "$s" = "$(job_state "$op")" ]; then
                # The job status shows: this operation, over all the data, partly done.
                "$PY" - "$T/status.json" "$op" "$SIZE" <<'EOF' || die "$what: state $s but the job in status is wrong: $(cat "$T/status.json")"
import json, sys
j = json.load(open(sys.argv[1]))["job"]
sys.exit(0 if j and j["operation"] == sys.argv[2] and j["total"] == int(sys.argv[3])
         and 0 <= j["done"] <= j["total"] and 0 <= j["percent"] <= 100 else 1)
EOF
                [ -e "$T/img.key" ] || die "$what: a $op job is under way but its key file was never written"
                # Not openable as if finished: by cryptsetup, nor (LUKS1) by QEMU. Once
                # the data is complete and the LUKS2 secondary header is restored (the
                # primary next), cryptsetup may already read the volume through it.
                local h=() fin
                [ -z "$hdr" ] || h=(--header "$hdr")
                fin=$(json_get "$T/status.json" "d['job']['finalizing']")
                if [ "$fin" != true ] || ! cs_can_open "$T/img" "$T/img.key" "$hdr"; then
                        ! cs luksDump "${h[@]}" "$T/img" >/dev/null 2>&1 ||
                                die "$what: cryptsetup luksDump reads an image whose $op job is unfinished"
                        ! cs_can_open "$T/img" "$T/img.key" "$hdr" ||
                                die "$what: cryptsetup opens an image whose $op job is unfinished"
                fi
                if [ "$mode" = luks1 ]; then
                        ! qemu-img info --object "secret,id=s0,file=$T/img.key" \
                                --image-opts "driver=luks,key-secret=s0,file.filename=$T/img" >/dev/null 2>&1 ||
                                die "$what: QEMU opens an image whose $op job is unfinished"
                fi
                resume "$mode" "$what"
        elif [ "$s" = "$(start_state "$op")" ]; then
                # Killed before the job left a mark: the user runs the command again.
                [ "$op" != encrypt ] || rm -f "$T/img.key"
                local rc
                rc=$(run_op "$op" "$mode")
                [ "$rc" = 0 ] || die "$what: '$op' again after the job never started: exit $rc: $(cat "$T/op.err")"
        elif [ "$s" != "$(end_state "$op")" ]; then
                die "$what: image in state '$s' after an interrupted $op"
        fi
}

# resume MODE WHAT [extra options]
resume() {
        local mode=$1 what=$2 rc=0
        shift 2
        hdr_args "$mode"
        vmc disk resume "${H[@]}" --key-file "$T/img.key" --progress none "$@" "$T/img" \
                >"$T/resume.out" 2>"$T/resume.err" || rc=$?
        [ "$rc" = 0 ] || die "$what: resume failed with exit $rc: $(cat "$T/resume.err")"
}

# verify_end OP MODE WHAT: the job is done; decrypt if needed and compare with the
# original plaintext.
verify_end() {
        local op=$1 mode=$2 what=$3 s hdr=""
        [ "$mode" != detached ] || hdr=$T/img.hdr
        s=$(image_state "$mode")
        assert_eq "$s" "$(end_state "$op")" "$what: state at the end"
        assert_eq "$(json_get "$T/status.json" "d['job']")" null "$what: job at the end"
        if [ "$s" = encrypted ]; then
                cs_can_open "$T/img" "$T/img.key" "$hdr" ||
                        die "$what: cryptsetup does not open the finished image with its key"
                local rc
                rc=$(run_op decrypt "$mode")
                [ "$rc" = 0 ] || die "$what: decrypt after the job failed: exit $rc: $(cat "$T/op.err")"
        fi
        assert_eq "$(file_size "$T/img")" "$SIZE" "$what: size of the plaintext"
        assert_eq "$(sha256_range "$T/img")" "$ORIG_SHA" "$what: sha256 of the plaintext"
}
