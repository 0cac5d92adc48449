/* The libvirt seam: connections, lookups, libvirt's errors as -errno with their
 * text, and what libvirt cannot tell (QEMU's PID, new UUIDs). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/macro.h"
#include "vm/vm-internal.h"

int vm_virt_errno(void) {
        const virError *e = virGetLastError();
        if (!e)
                return -EIO;
        switch (e->code) {
        case VIR_ERR_NO_DOMAIN:
        case VIR_ERR_NO_SECRET:
                return -ENOENT;
        case VIR_ERR_OPERATION_INVALID:
        case VIR_ERR_OPERATION_FAILED:
                return -EBUSY;
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_CANCELLED:
        case VIR_ERR_ACCESS_DENIED:
                return -EACCES;
        case VIR_ERR_NO_CONNECT:
                return -ECONNREFUSED;
        case VIR_ERR_NO_SUPPORT:
        case VIR_ERR_OPERATION_UNSUPPORTED:
                return -EOPNOTSUPP;
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_XML_DETAIL:
        case VIR_ERR_CONFIG_UNSUPPORTED:
                return -EINVAL;
        default:
                return -EIO;
        }
}

const char *vm_virt_text(void) {
        const char *s = virGetLastErrorMessage();
        return s ? s : "unknown libvirt error";
}

/* libvirt prints every error on stderr unless told otherwise. */
static void silent(void *userdata, virErrorPtr e) {
        (void) userdata;
        (void) e;
}

int vm_conn_open(const char *uri, virConnectPtr *ret, struct error *err) {
        virSetErrorFunc(NULL, silent);
        if (!uri)
                uri = VM_DEFAULT_URI;
        virConnectPtr c = virConnectOpen(uri);
        if (!c) {
                int r = vm_virt_errno();
                if (r == -EIO)
                        r = -ECONNREFUSED;
                return error_set(err, r, "cannot connect to libvirt at %s: %s (is libvirtd running? --connect URI "
                               "names another)", uri, vm_virt_text());
        }
        *ret = c;
        return 0;
}

int vm_domain_lookup(virConnectPtr conn, const char *name, virDomainPtr *ret, struct error *err) {
        virDomainPtr d = virDomainLookupByName(conn, name);
        if (!d)
                d = virDomainLookupByUUIDString(conn, name);
        if (!d)
                return error_set(err, -ENOENT, "no domain called '%s' (virsh list --all shows them; --connect "
                               "names another libvirt)", name);
        *ret = d;
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* libvirt starts QEMU with "-uuid UUID" on its command line. */
pid_t vm_qemu_pid(const char *uuid) {
        _cleanup_(closedirp) DIR *proc = opendir("/proc");
        if (!proc || !uuid[0])
                return 0;
        size_t ulen = strlen(uuid);
        struct dirent *de;
        while ((de = readdir(proc))) {
                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                char path[300], buf[16384];
                snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
                _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t n = read(fd, buf, sizeof buf - 1);
                if (n <= 0)
                        continue;
                buf[n] = '\0';
                if (!strstr(buf, "qemu"))
                        continue;
                for (ssize_t i = 0; i + 6 + (ssize_t) ulen <= n; i++)
                        if (memcmp(buf + i, "-uuid", 6) == 0 && memcmp(buf + i + 6, uuid, ulen) == 0)
                                return (pid_t) strtol(de->d_name, NULL, 10);
        }
        return 0;
}

int vm_uuid_new(char out[VM_UUID_LEN]) {
        unsigned char b[16];
        if (RAND_bytes(b, sizeof b) != 1)
                return -EIO;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(out, VM_UUID_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}
