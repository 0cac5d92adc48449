/* libFuzzer harness for the domain XML reader and editor (src/vm/domain-xml.c):
 * a domain's author writes the XML libvirt hands back, so its parser, the
 * <encryption> edit and the reading of vmcrypt's <metadata> must survive any
 * bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *xml = malloc(size + 1);
        if (!xml)
                return 0;
        memcpy(xml, data, size);
        xml[size] = '\0';
        struct vm_meta m;
        if (vm_xml_meta(xml, &m) == 0) {
                char *el = NULL;
                (void) vm_xml_meta_element(&m, &el);
                free(el);
        }
        struct vm_disk *disks = NULL;
        size_t n = 0;
        if (vm_xml_disks(xml, &disks, &n) == 0) {
                for (size_t i = 0; i < n; i++) {
                        char *out = NULL;
                        if (disks[i].target[0] &&
                            vm_xml_set_encryption(xml, disks[i].target, "00000000-0000-4000-8000-000000000001",
                                                  &out) == 0) {
                                char *back = NULL;
                                (void) vm_xml_set_encryption(out, disks[i].target, NULL, &back);
                                free(back);
                        }
                        free(out);
                        free(disks[i].path);
                }
                free(disks);
        }
        free(xml);
        return 0;
}
