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
# console, and powers off.
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
