/* The <nvram> of the domain XML (libxml2): where the UEFI variable store is, and
 * the one edit vmcrypt makes, its <encryption>. */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"
#include "vm/home.h"
#include "vm/xml-util.h"

static xmlNodePtr nvram_of(xmlDocPtr doc) {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        return vm_xml_is(root, "domain") ? vm_xml_child(vm_xml_child(root, "os"), "nvram") : NULL;
}

/* The file of an <nvram>: <source file=> (type='file'), else its text (the
 * older form); NULL for network NVRAM or none. */
static char *nvram_path(xmlNodePtr nv) {
        _cleanup_(freep) char *type = vm_xml_attr_dup(nv, "type");
        if (type && strcmp(type, "file") != 0)
                return NULL;
        xmlNodePtr src = vm_xml_child(nv, "source");
        if (src)
                return vm_xml_attr_dup(src, "file");
        xmlChar *t = xmlNodeGetContent(nv);
        if (!t)
                return NULL;
        char *s = t[0] ? strdup((const char *) t) : NULL;
        xmlFree(t);
        return s;
}

int vm_xml_nvram(const char *xml, struct vm_disk *ret) {
        memset(ret, 0, sizeof *ret);
        ret->eta = -1;
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        if (!doc || !vm_xml_is(xmlDocGetRootElement(doc), "domain"))
                return -EBADMSG;
        xmlNodePtr nv = nvram_of(doc);
        if (!nv)
                return 0;
        snprintf(ret->target, sizeof ret->target, "nvram");
        snprintf(ret->format, sizeof ret->format, "raw");
        _cleanup_(freep) char *type = vm_xml_attr_dup(nv, "type");
        snprintf(ret->source_type, sizeof ret->source_type, "%s", type ? type : "file");
        ret->path = nvram_path(nv);
        xmlNodePtr enc = vm_xml_child(vm_xml_child(nv, "source"), "encryption");
        if (enc) {
                ret->xml_encrypted = true;
                _cleanup_(freep) char *u = vm_xml_attr_dup(vm_xml_child(enc, "secret"), "uuid");
                snprintf(ret->secret_uuid, sizeof ret->secret_uuid, "%s", u ? u : "");
        }
        return 1;
}

int vm_xml_nvram_set_encryption(const char *xml, const char *secret_uuid, char **ret) {
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        xmlNodePtr nv = doc ? nvram_of(doc) : NULL;
        if (!nv)
                return doc ? -ENOENT : -EBADMSG;
        _cleanup_(freep) char *path = nvram_path(nv);
        if (!path)
                return -EOPNOTSUPP;
        /* The encryption lives under <source>: turn the older text form into
         * type='file' with a <source file=> (the same file to libvirt). */
        xmlNodePtr src = vm_xml_child(nv, "source");
        if (!src) {
                for (xmlNodePtr c = nv->children, next; c; c = next) {
                        next = c->next;
                        if (c->type == XML_TEXT_NODE) {
                                xmlUnlinkNode(c);
                                xmlFreeNode(c);
                        }
                }
                if (!xmlSetProp(nv, BAD_CAST "type", BAD_CAST "file"))
                        return -ENOMEM;
                src = xmlNewChild(nv, NULL, BAD_CAST "source", NULL);
                if (!src || !xmlNewProp(src, BAD_CAST "file", BAD_CAST path))
                        return -ENOMEM;
        }
        xmlNodePtr old;
        while ((old = vm_xml_child(src, "encryption"))) {
                xmlUnlinkNode(old);
                xmlFreeNode(old);
        }
        if (secret_uuid) {
                /* engine='qemu': libvirt 9.0 refuses an NVRAM encryption without it
                 * ("Unexpected enum value 0 for virStorageEncryptionEngine"). */
                xmlNodePtr enc = xmlNewChild(src, NULL, BAD_CAST "encryption", NULL);
                xmlNodePtr s = enc ? xmlNewChild(enc, NULL, BAD_CAST "secret", NULL) : NULL;
                if (!s || !xmlNewProp(enc, BAD_CAST "format", BAD_CAST "luks") ||
                    !xmlNewProp(enc, BAD_CAST "engine", BAD_CAST "qemu") ||
                    !xmlNewProp(s, BAD_CAST "type", BAD_CAST "passphrase") ||
                    !xmlNewProp(s, BAD_CAST "uuid", BAD_CAST secret_uuid))
                        return -ENOMEM;
        }
        xmlChar *out = NULL;
        int len = 0;
        xmlDocDumpMemory(doc, &out, &len);
        if (!out)
                return -ENOMEM;
        *ret = strdup((const char *) out);
        xmlFree(out);
        return *ret ? 0 : -ENOMEM;
}
