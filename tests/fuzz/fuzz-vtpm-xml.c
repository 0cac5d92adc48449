/* libFuzzer harness for the vTPM part of the domain XML (src/vm/vtpm-xml.c): the
 * <tpm> device and vmcrypt's record come from a document a domain's author can
 * write, so reading them, turning the record into a token, and the add/remove
 * edits must survive any bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
        free(xml);
        return 0;
}
