/* The domain XML: which disks a domain has and how they are wired (libxml2, never
 * hand parsing: the XML comes from libvirt but a domain's author wrote it), and the
 * one edit vmcrypt makes, a disk's <encryption> element. */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"
#include "vm/vm-internal.h"
#include "vm/xml-util.h"

static xmlNodePtr devices_of(xmlDocPtr doc) {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        return root && vm_xml_is(root, "domain") ? vm_xml_child(root, "devices") : NULL;
}

static bool is_disk(xmlNodePtr n) {
        if (!vm_xml_is(n, "disk"))
                return false;
        char dev[16];
        (void) vm_xml_attr_copy(n, "device", dev, sizeof dev);
        /* cdrom, floppy and lun are not the VM's volumes. */
        return dev[0] == '\0' || strcmp(dev, "disk") == 0;
}

/* The <encryption> of a disk: under <source> (libvirt >= 6.10 writes it there) or,
 * the older form, directly under <disk>. */
static xmlNodePtr encryption_of(xmlNodePtr disk) {
        xmlNodePtr e = vm_xml_child(vm_xml_child(disk, "source"), "encryption");
        return e ? e : vm_xml_child(disk, "encryption");
}

int vm_xml_disks(const char *xml, struct vm_disk **ret, size_t *ret_n) {
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        if (!doc)
                return -EBADMSG;
        xmlNodePtr devs = devices_of(doc);
        size_t n = 0;
        for (xmlNodePtr c = devs ? devs->children : NULL; c; c = c->next)
                n += is_disk(c);
        struct vm_disk *disks = calloc(n ? n : 1, sizeof *disks);
        if (!disks)
                return -ENOMEM;
        size_t i = 0;
        long best_order = -1;
        ssize_t boot = -1;
        for (xmlNodePtr c = devs ? devs->children : NULL; c; c = c->next) {
                if (!is_disk(c))
                        continue;
                struct vm_disk *d = &disks[i];
                d->eta = -1;
                (void) vm_xml_attr_copy(c, "type", d->source_type, sizeof d->source_type);
                (void) vm_xml_attr_copy(vm_xml_child(c, "target"), "dev", d->target, sizeof d->target);
                (void) vm_xml_attr_copy(vm_xml_child(c, "driver"), "type", d->format, sizeof d->format);
                d->readonly = vm_xml_child(c, "readonly") != NULL;
                xmlNodePtr src = vm_xml_child(c, "source");
                if (strcmp(d->source_type, "file") == 0)
                        d->path = vm_xml_attr_dup(src, "file");
                else if (strcmp(d->source_type, "block") == 0)
                        d->path = vm_xml_attr_dup(src, "dev");
                xmlNodePtr enc = encryption_of(c);
                if (enc) {
                        d->xml_encrypted = true;
                        (void) vm_xml_attr_copy(vm_xml_child(enc, "secret"), "uuid", d->secret_uuid, sizeof d->secret_uuid);
                }
                /* The OS disk: the lowest <boot order='N'/> among the disks. */
                char order[16];
                (void) vm_xml_attr_copy(vm_xml_child(c, "boot"), "order", order, sizeof order);
                if (order[0]) {
                        long o = strtol(order, NULL, 10);
                        if (best_order < 0 || o < best_order) {
                                best_order = o;
                                boot = (ssize_t) i;
                        }
                }
                i++;
        }
        /* No per-device boot order (<os><boot dev='hd'/> or nothing): the first
         * disk is the one the firmware boots. */
        if (n > 0)
                disks[boot >= 0 ? (size_t) boot : 0].os = true;
        *ret = disks;
        *ret_n = n;
        return 0;
}

int vm_xml_set_encryption(const char *xml, const char *target, const char *secret_uuid, char **ret) {
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        if (!doc)
                return -EBADMSG;
        xmlNodePtr devs = devices_of(doc), disk = NULL;
        for (xmlNodePtr c = devs ? devs->children : NULL; c && !disk; c = c->next) {
                char dev[32];
                (void) vm_xml_attr_copy(vm_xml_child(c, "target"), "dev", dev, sizeof dev);
                if (is_disk(c) && strcmp(dev, target) == 0)
                        disk = c;
        }
        if (!disk)
                return -ENOENT;
        xmlNodePtr old;
        while ((old = encryption_of(disk))) {
                xmlUnlinkNode(old);
                xmlFreeNode(old);
        }
        if (secret_uuid) {
                xmlNodePtr src = vm_xml_child(disk, "source");
                if (!src)
                        return -EINVAL;
                xmlNodePtr enc = xmlNewChild(src, NULL, BAD_CAST "encryption", NULL);
                if (!enc || !xmlNewProp(enc, BAD_CAST "format", BAD_CAST "luks"))
                        return -ENOMEM;
                xmlNodePtr s = xmlNewChild(enc, NULL, BAD_CAST "secret", NULL);
                if (!s || !xmlNewProp(s, BAD_CAST "type", BAD_CAST "passphrase") ||
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

static bool in_meta_ns(const xmlNode *n) {
        return n->ns && n->ns->href && xmlStrcmp(n->ns->href, BAD_CAST VM_META_NS) == 0;
}

int vm_xml_meta(const char *xml, struct vm_meta *m) {
        memset(m, 0, sizeof *m);
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        if (!doc)
                return -EBADMSG;
        xmlNodePtr root = xmlDocGetRootElement(doc);
        xmlNodePtr md = root && vm_xml_is(root, "domain") ? vm_xml_child(root, "metadata") : NULL;
        for (xmlNodePtr c = md ? md->children : NULL; c; c = c->next) {
                if (!vm_xml_is(c, "vm") || !in_meta_ns(c))
                        continue;
                char v[8];
                (void) vm_xml_attr_copy(c, "auto-encrypt", v, sizeof v);
                m->auto_encrypt = strcmp(v, "on") == 0;
                for (xmlNodePtr r = c->children; r; r = r->next) {
                        /* libvirt stores the children as given: unqualified. */
                        if (!vm_xml_is(r, "rekey") || (r->ns && !in_meta_ns(r)))
                                continue;
                        (void) vm_xml_attr_copy(r, "provider", m->rekey_provider, sizeof m->rekey_provider);
                        (void) vm_xml_attr_copy(r, "kek", m->rekey_kek, sizeof m->rekey_kek);
                        (void) vm_xml_attr_copy(r, "deep", v, sizeof v);
                        m->rekey_deep = strcmp(v, "yes") == 0;
                        /* Half a record names no KEK to go on with. */
                        if (!m->rekey_provider[0] || !m->rekey_kek[0])
                                m->rekey_provider[0] = m->rekey_kek[0] = '\0';
                }
                break;
        }
        return 0;
}

/* The element's text, built with libxml2 so that any provider name or KEK id
 * is escaped. */
static int dump_root(xmlDocPtr doc, char **ret) {
        xmlBufferPtr buf = xmlBufferCreate();
        if (!buf)
                return -ENOMEM;
        int r = xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 0) < 0 ? -ENOMEM : 0;
        if (r >= 0 && !(*ret = strdup((const char *) xmlBufferContent(buf))))
                r = -ENOMEM;
        xmlBufferFree(buf);
        return r;
}

int vm_xml_meta_element(const struct vm_meta *m, char **ret) {
        *ret = NULL;
        bool rekey = m->rekey_provider[0] && m->rekey_kek[0];
        if (!m->auto_encrypt && !rekey)
                return 0;
        _cleanup_(vm_xml_docp) xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNodePtr vm = doc ? xmlNewNode(NULL, BAD_CAST "vm") : NULL;
        if (!vm)
                return -ENOMEM;
        xmlDocSetRootElement(doc, vm);
        if (!xmlNewProp(vm, BAD_CAST "auto-encrypt", BAD_CAST(m->auto_encrypt ? "on" : "off")))
                return -ENOMEM;
        if (rekey) {
                xmlNodePtr r = xmlNewChild(vm, NULL, BAD_CAST "rekey", NULL);
                if (!r || !xmlNewProp(r, BAD_CAST "provider", BAD_CAST m->rekey_provider) ||
                    !xmlNewProp(r, BAD_CAST "kek", BAD_CAST m->rekey_kek) ||
                    !xmlNewProp(r, BAD_CAST "deep", BAD_CAST(m->rekey_deep ? "yes" : "no")))
                        return -ENOMEM;
        }
        return dump_root(doc, ret);
}

int vm_xml_disk_new(const char *path, const char *target, const char *secret_uuid, char **ret) {
        _cleanup_(vm_xml_docp) xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNodePtr disk = doc ? xmlNewNode(NULL, BAD_CAST "disk") : NULL;
        if (!disk)
                return -ENOMEM;
        xmlDocSetRootElement(doc, disk);
        xmlNodePtr drv, src, tgt;
        if (!xmlNewProp(disk, BAD_CAST "type", BAD_CAST "file") ||
            !xmlNewProp(disk, BAD_CAST "device", BAD_CAST "disk") ||
            !(drv = xmlNewChild(disk, NULL, BAD_CAST "driver", NULL)) ||
            !xmlNewProp(drv, BAD_CAST "name", BAD_CAST "qemu") || !xmlNewProp(drv, BAD_CAST "type", BAD_CAST "raw") ||
            !(src = xmlNewChild(disk, NULL, BAD_CAST "source", NULL)) ||
            !xmlNewProp(src, BAD_CAST "file", BAD_CAST path) ||
            !(tgt = xmlNewChild(disk, NULL, BAD_CAST "target", NULL)) ||
            !xmlNewProp(tgt, BAD_CAST "dev", BAD_CAST target) || !xmlNewProp(tgt, BAD_CAST "bus", BAD_CAST "virtio"))
                return -ENOMEM;
        if (secret_uuid) {
                xmlNodePtr enc = xmlNewChild(src, NULL, BAD_CAST "encryption", NULL), s;
                if (!enc || !xmlNewProp(enc, BAD_CAST "format", BAD_CAST "luks") ||
                    !(s = xmlNewChild(enc, NULL, BAD_CAST "secret", NULL)) ||
                    !xmlNewProp(s, BAD_CAST "type", BAD_CAST "passphrase") ||
                    !xmlNewProp(s, BAD_CAST "uuid", BAD_CAST secret_uuid))
                        return -ENOMEM;
        }
        return dump_root(doc, ret);
}
