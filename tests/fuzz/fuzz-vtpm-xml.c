/* libFuzzer harness for the VM home parts of the domain XML (src/vm/vtpm-xml.c,
 * src/vm/home-xml.c): the <tpm> device, vmcrypt's vTPM record and the <nvram>
 * come from a document a domain's author can write, so reading them, turning the
 * record into a token, and the edits must survive any bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/home.h"
#include "vm/vtpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *xml = malloc(size + 1);
        if (!xml)
                return 0;
        memcpy(xml, data, size);
        xml[size] = '\0';
        struct vm_vtpm_xml x;
        if (vm_xml_vtpm(xml, &x) == 0) {
                struct vmcrypt_token *t = NULL;
                if (x.meta && !x.meta_error && vm_vtpm_meta_to_token(&x.m, &t) == 0)
                        token_free(t);
                char *out = NULL;
                if (x.meta && !x.meta_error && vm_xml_vtpm_add(xml, "tpm-crb", &x.m, &out) == 0) {
                        char *back = NULL;
                        (void) vm_xml_vtpm_remove(out, &back);
                        free(back);
                }
                free(out);
                out = NULL;
                (void) vm_xml_vtpm_remove(xml, &out);
                free(out);
        }
        struct vm_disk nv;
        if (vm_xml_nvram(xml, &nv) == 1) {
                char *out = NULL, *back = NULL;
                if (vm_xml_nvram_set_encryption(xml, "00000000-0000-4000-8000-000000000001", &out) == 0)
                        (void) vm_xml_nvram_set_encryption(out, NULL, &back);
                free(out);
                free(back);
                vm_disk_clear(&nv);
        }
        free(xml);
        return 0;
}
