# Shared helpers for the VM interop tests (tests/interop/vm-*.sh); sourced after
# ../lib.sh. Starts a private libvirtd + virtlogd for the test and builds the guest
# kit (notes: /work/shared/notes/libvirt.md, machine.md section 9).
#
# Other engineers run libvirtd on the same machine, and libvirt's system daemon
# keeps its state in fixed places (/run/libvirt, /var/lib/libvirt, /etc/libvirt:
# the QEMU driver locks /run/libvirt/qemu/driver.pid). So the test's daemons run
# in a private mount namespace where those directories are the test's own, and
# listen on a socket in $T: two tests, or a test and a host daemon, never meet.
# They are stopped by the PIDs in their own pid files.

require_vm_peers() {
        require_vmcrypt
        "$VMCRYPT" vm --help >/dev/null 2>&1 || die "'$VMCRYPT vm' is missing: this build has no vm commands"
        require_cmd libvirtd virtlogd virsh qemu-system-x86_64 unshare busybox cpio
        getent passwd libvirt-qemu >/dev/null && getent group libvirt-qemu >/dev/null ||
                die "libvirtd needs the user and group libvirt-qemu: run scripts/deps.sh"
        ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 ||
                die "no Debian cloud kernel in /boot: run scripts/deps.sh (linux-image-cloud-amd64)"
}

LV_PIDS=()

# libvirtd_start: sets LV_URI. Fails the test with libvirtd's log when it cannot start.
libvirtd_start() {
        local d=$T/libvirt
        mkdir -p "$d"/{run,lib/qemu,log,cache,etc,sock} /run/libvirt /var/lib/libvirt /var/log/libvirt \
                /var/cache/libvirt /etc/libvirt
        # QEMU runs as root: the test's images and kernel need no ownership change.
        printf 'user = "root"\ngroup = "root"\nswtpm_user = "root"\nswtpm_group = "root"\n' >"$d/etc/qemu.conf"
        cat >"$d/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$d/sock"
log_outputs = "3:file:$d/libvirtd.log"
CONF
        cat >"$d/etc/virtlogd.conf" <<CONF
log_outputs = "3:file:$d/virtlogd.log"
CONF
        unshare -m --propagation private sh -c '
                set -e
                d=$1
                mount -t tmpfs vmcrypt-test /run/libvirt
                mount --bind "$d/lib" /var/lib/libvirt
                mount --bind "$d/log" /var/log/libvirt
                mount --bind "$d/cache" /var/cache/libvirt
                mount --bind "$d/etc" /etc/libvirt
                virtlogd -d --pid-file "$d/virtlogd.pid" --config "$d/etc/virtlogd.conf"
                libvirtd -d --pid-file "$d/libvirtd.pid" --config "$d/etc/libvirtd.conf"
        ' sh "$d" >"$d/start.log" 2>&1 || die "libvirtd could not start: $(cat "$d/start.log")"
        # Registered before anything can fail, so a daemon that came up is stopped.
        LV_PIDS=()
        for i in virtlogd libvirtd; do
                if [ -s "$d/$i.pid" ]; then LV_PIDS+=("$(cat "$d/$i.pid")"); fi
        done
        trap _vm_exit EXIT
        LV_URI="qemu+unix:///system?socket=$d/sock/libvirt-sock"
        for i in $(seq 1 100); do
                virsh -c "$LV_URI" version >/dev/null 2>&1 && break
                sleep 0.1
        done
        virsh -c "$LV_URI" version >/dev/null 2>&1 ||
                die "libvirtd did not answer on $d/sock: $(grep -v 'dmidecode\|DMI\|dnsmasq\|DBus\|system bus' \
                        "$d/libvirtd.log" 2>/dev/null | tail -5)"
        [ ${#LV_PIDS[@]} -eq 2 ] || die "libvirtd or virtlogd wrote no pid file in $d"
        export LV_URI
}

# The test's verdict survives the daemons' shutdown.
_vm_exit() {
        local rc=$?
        set +e
        libvirtd_stop
        (exit "$rc")
        _lib_cleanup
}

# Stop the test's own daemons (and a QEMU they left running) by PID.
libvirtd_stop() {
        local p
        [ ${#LV_PIDS[@]} -gt 0 ] || return 0
        if [ -n "${LV_URI:-}" ]; then
                for p in $(virsh -c "$LV_URI" list --uuid 2>/dev/null); do
                        virsh -c "$LV_URI" destroy "$p" >/dev/null 2>&1 || true
                done
        fi
        for p in "${LV_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${LV_PIDS[@]}"; do
                for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$p" 2>/dev/null || true
        done
        LV_PIDS=()
        LV_URI=
}

# guest_kit DIR: DIR/vmlinuz and DIR/initrd.img, a busybox initramfs whose init
# loads virtio_blk, prints "SHA <dev> <sha256>" for every /dev/vd? on the serial
# console, and powers off (with vmcrypt.disks=N on its command line it first
# prints GUEST-UP and waits for N disks: hot-plug tests).
guest_kit() {
        local dir=$1 kernel ver root m
        kernel=$(ls /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -1)
        ver=${kernel#/boot/vmlinuz-}
        root=$dir/initramfs
        mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
        cp "$kernel" "$dir/vmlinuz"
        cp /bin/busybox "$root/bin/busybox"
        for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev virtio/virtio_pci_legacy_dev \
                 virtio/virtio_pci block/virtio_blk; do
                local f
                f=$(ls /lib/modules/"$ver"/kernel/drivers/$m.ko* 2>/dev/null | head -1)
                [ -n "$f" ] || die "kernel module $m missing for $ver"
                case $f in
                *.xz) xz -dc "$f" >"$root/lib/modules/$(basename "$m").ko" ;;
                *.zst) zstd -qdc "$f" >"$root/lib/modules/$(basename "$m").ko" ;;
                *) cp "$f" "$root/lib/modules/$(basename "$m").ko" ;;
                esac
        done
        cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
        insmod /lib/modules/$m.ko
done
sleep 1
# vmcrypt.disks=N on the kernel command line: say GUEST-UP, then wait (up to 60 s)
# for N disks, so that a test can hot-plug the missing ones.
want=$(sed -n 's/.*vmcrypt\.disks=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$want" ]; then
        echo GUEST-UP
        i=0
        while [ "$(ls /dev/vd? 2>/dev/null | wc -l)" -lt "$want" ] && [ $i -lt 600 ]; do
                sleep 0.1
                i=$((i + 1))
        done
        sleep 0.5
fi
for d in /dev/vd?; do
        echo "SHA $(basename $d) $(sha256sum $d | cut -d' ' -f1)"
done
echo GUEST-DONE
poweroff -f
INIT
        chmod 755 "$root/init"
        (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$dir/initrd.img"
}

# domain_xml NAME UUID KITDIR CONSOLE DISK...: a TCG domain booting the guest kit
# with the disks as vda, vdb, ... (the first one boot order 1: the OS disk).
domain_xml() {
        local name=$1 uuid=$2 kit=$3 console=$4 i=0 disk letters=abcdefgh boot
        shift 4
        cat <<XML
<domain type='qemu'>
  <name>$name</name><uuid>$uuid</uuid>
  <memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$kit/vmlinuz</kernel><initrd>$kit/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
XML
        for disk in "$@"; do
                boot=""
                [ $i -eq 0 ] && boot="<boot order='1'/>"
                cat <<XML
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='$disk'/><target dev='vd${letters:$i:1}' bus='virtio'/>$boot</disk>
XML
                i=$((i + 1))
        done
        cat <<XML
    <serial type='file'><source path='$console'/><target port='0'/></serial>
    <memballoon model='none'/>
    <video><model type='none'/></video>
  </devices>
</domain>
XML
}

# ---- inventories through libvirt's test driver (no daemon, no QEMU) ---------

# interrupted_job OUT OP: an image holding an interrupted OP (encrypt|decrypt) job
# at some point past its start: the job runs rate-limited and is killed.
interrupted_job() {
        local out=$1 op=$2 args=() pid i
        if [ "$op" = encrypt ]; then
                truncate -s 16M "$out"
                args=(--type luks1 --new-key-file "$out.key")
        else
                truncate -s 16M "$out"
                vmc disk encrypt --type luks1 --new-key-file "$out.key" --progress none "$out" >/dev/null
                args=(--key-file "$out.key")
        fi
        "$VMCRYPT" disk "$op" "${args[@]}" --max-rate 2M --progress none "$out" >/dev/null 2>&1 &
        pid=$!
        # While the job runs a status read can meet the header mid-change (seen at
        # the start of a decrypt: "corrupted (both copies)"): poll, do not assert.
        for i in $(seq 100); do
                if vmc disk status --json "$out" >"$T/poll.json" 2>/dev/null &&
                        [ "$(json_get "$T/poll.json" "(d['job'] or {}).get('done', 0) > 0")" = true ]; then
                        break
                fi
                sleep 0.05
        done
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        status_json "$out"
        [ "$(json_get "$T/status.json" "d['state']")" = "${op}ing" ] || die "no interrupted $op job on $out"
}

# make_inventory DIR N: DIR/node.xml with N domains (libvirt's test driver) over
# small sparse images, hard links of five templates. Kinds by i % 8:
#   0 plain OS + plain data     1 encrypted OS + plain data   2 both encrypted
#   3 OS only, encrypted        4 OS only, plain              5 data disk being encrypted
#   6 data disk being decrypted 7 XML says encrypted but the data disk is plain,
#                                 plus a qcow2 disk, a network disk and a cdrom
# Domain i is "vm-<i>" with UUID 00000000-0000-4000-8000-<i as 12 digits>.
make_inventory() {
        local dir=$1 n=$2 i kind os data extra enc
        mkdir -p "$dir"
        truncate -s 1M "$dir/plain.img"
        truncate -s 1M "$dir/luks.img"
        vmc disk encrypt --type luks1 --new-key-file "$dir/luks.key" --progress none "$dir/luks.img" >/dev/null
        interrupted_job "$dir/job-enc.img" encrypt
        interrupted_job "$dir/job-dec.img" decrypt
        enc="<encryption format='luks'><secret type='passphrase' uuid='00000000-0000-4000-9000-000000000001'/></encryption>"
        disk() { # target file [encryption-xml] [boot]
                echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$2'>${3:-}</source><target dev='$1' bus='virtio'/>${4:-}</disk>"
        }
        {
                echo "<node>"
                for i in $(seq 0 $((n - 1))); do
                        kind=$((i % 8))
                        os=plain; data=plain; extra=""
                        case $kind in
                        1) os=luks ;;
                        2) os=luks; data=luks ;;
                        3) os=luks; data="" ;;
                        4) data="" ;;
                        5) data=job-enc ;;
                        6) os=luks; data=job-dec ;;
                        esac
                        ln -f "$dir/$os.img" "$dir/vm-$i-os.img"
                        echo "<domain type='test'><name>vm-$i</name><uuid>00000000-0000-4000-8000-$(printf %012d "$i")</uuid>"
                        echo "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>"
                        [ "$os" = luks ] && disk vda "$dir/vm-$i-os.img" "$enc" "<boot order='1'/>" ||
                                disk vda "$dir/vm-$i-os.img" "" "<boot order='1'/>"
                        if [ -n "$data" ]; then
                                ln -f "$dir/$data.img" "$dir/vm-$i-data.img"
                                if [ $kind = 7 ] || [ "$data" = luks ]; then
                                        disk vdb "$dir/vm-$i-data.img" "$enc"
                                else
                                        disk vdb "$dir/vm-$i-data.img"
                                fi
                        fi
                        if [ $kind = 7 ]; then
                                echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$dir/plain.img'/><target dev='vdc' bus='virtio'/></disk>"
                                echo "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='x'><host name='127.0.0.1' port='10809'/></source><target dev='vdd' bus='virtio'/></disk>"
                                echo "<disk type='file' device='cdrom'><source file='$dir/plain.img'/><target dev='hdc' bus='ide'/><readonly/></disk>"
                        fi
                        echo "</devices></domain>"
                done
                echo "</node>"
        } >"$dir/node.xml"
}
