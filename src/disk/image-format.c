/* Container image signatures: see image-format.h. */
#include "disk/image-format.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "shared/fd-util.h"
#include "shared/macro.h"

struct signature {
        const char *name;
        size_t offset;
        size_t len;
        const char *magic;
};

/* The magics QEMU's own probes use (block/qcow2.c, vmdk.c, vpc.c, vhdx.c, vdi.c,
 * qed.c). VMDK's text descriptor ("# Disk DescriptorFile") names flat extents in
 * other files; the file itself is not the disk either. */
static const struct signature signatures[] = {
        { "qcow2", 0, 4, "QFI\xfb" },
        { "qed", 0, 4, "QED\0" },
        { "vmdk", 0, 4, "KDMV" },
        { "vmdk", 0, 4, "COWD" },
        { "vmdk", 0, 21, "# Disk DescriptorFile" },
        { "vhdx", 0, 8, "vhdxfile" },
        { "vhd", 0, 8, "conectix" },       /* dynamic VHD: a footer copy at 0 */
        { "vdi", 0x40, 4, "\x7f\x10\xda\xbe" }, /* 0xbeda107f little-endian */
};

const char *image_format_match(const uint8_t *head, size_t head_len, const uint8_t *tail) {
        for (size_t i = 0; i < ELEMENTSOF(signatures); i++) {
                const struct signature *s = &signatures[i];
                if (s->offset + s->len <= head_len && memcmp(head + s->offset, s->magic, s->len) == 0)
                        return s->name;
        }
        /* Fixed VHD: raw data followed by a 512-byte footer. */
        if (tail && memcmp(tail, "conectix", 8) == 0)
                return "vhd";
        return NULL;
}

int image_format_probe(int fd, uint64_t size, const char **ret_name) {
        uint8_t head[512] = { 0 }, tail[512];
        size_t n = (size_t) MIN(size, (uint64_t) sizeof(head));
        int r = pread_full(fd, head, n, 0);
        if (r < 0)
                return r;
        bool have_tail = size >= 2 * sizeof(tail);
        if (have_tail && (r = pread_full(fd, tail, sizeof(tail), (off_t) (size - sizeof(tail)))) < 0)
                return r;
        const char *name = image_format_match(head, n, have_tail ? tail : NULL);
        if (!name)
                return 0;
        *ret_name = name;
        return 1;
}
