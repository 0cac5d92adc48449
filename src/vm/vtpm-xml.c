/* The vTPM in the domain XML (libxml2): the <tpm> device and vmcrypt's record of
 * the wrapped state secret in <metadata>. Both are added and removed in one
 * document, so that a single virDomainDefineXML changes both or neither: there is
 * never a vmcrypt TPM whose secret is recorded nowhere. */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/b64.h"
#include "shared/macro.h"
#include "vm/vtpm.h"
#include "vm/xml-util.h"

static xmlNodePtr root_of(xmlDocPtr doc) {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        return vm_xml_is(root, "domain") ? root : NULL;
}

static bool is_record(const xmlNode *n) {
        return vm_xml_is(n, "vtpm") && n->ns && n->ns->href && xmlStrcmp(n->ns->href, BAD_CAST VM_VTPM_NS) == 0;
}

static xmlNodePtr record_of(xmlNodePtr root) {
        for (xmlNodePtr c = vm_xml_child(root, "metadata") ? vm_xml_child(root, "metadata")->children : NULL; c; c = c->next)
                if (is_record(c))
                        return c;
        return NULL;
}

static bool uuid_ok(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
                        return false;
        }
        return true;
}

static int read_record(xmlNodePtr n, struct vm_vtpm_meta *m) {
        int r = 0;
        r |= vm_xml_attr_copy(n, "secret", m->secret_uuid, sizeof m->secret_uuid);
        r |= vm_xml_attr_copy(n, "provider", m->provider, sizeof m->provider);
        r |= vm_xml_attr_copy(n, "kek", m->kek, sizeof m->kek);
        r |= vm_xml_attr_copy(n, "method", m->method, sizeof m->method);
        r |= vm_xml_attr_copy(n, "cipher", m->cipher, sizeof m->cipher);
        r |= vm_xml_attr_copy(n, "wrapped", m->wrapped, sizeof m->wrapped);
        r |= vm_xml_attr_copy(n, "iv", m->iv, sizeof m->iv);
        r |= vm_xml_attr_copy(n, "tag", m->tag, sizeof m->tag);
        r |= vm_xml_attr_copy(n, "created", m->created, sizeof m->created);
        if (r < 0 || !uuid_ok(m->secret_uuid) || !m->provider[0] || !m->kek[0] || !m->method[0] || !m->wrapped[0])
                return -EBADMSG;
        /* The fields must also make a token a provider accepts. */
        _cleanup_(token_freep) struct vmcrypt_token *t = NULL;
        return vm_vtpm_meta_to_token(m, &t);
}

int vm_xml_vtpm(const char *xml, struct vm_vtpm_xml *ret) {
        memset(ret, 0, sizeof *ret);
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        xmlNodePtr root = doc ? root_of(doc) : NULL;
        if (!root)
                return -EBADMSG;
        xmlNodePtr tpm = vm_xml_child(vm_xml_child(root, "devices"), "tpm");
        if (tpm) {
                ret->tpm = true;
                xmlNodePtr be = vm_xml_child(tpm, "backend");
                (void) vm_xml_attr_copy(tpm, "model", ret->model, sizeof ret->model);
                (void) vm_xml_attr_copy(be, "type", ret->backend, sizeof ret->backend);
                if (vm_xml_attr_copy(vm_xml_child(be, "encryption"), "secret", ret->tpm_secret, sizeof ret->tpm_secret) < 0)
                        snprintf(ret->tpm_secret, sizeof ret->tpm_secret, "(too long)");
        }
        xmlNodePtr rec = record_of(root);
        if (rec) {
                ret->meta = true;
                ret->meta_error = read_record(rec, &ret->m);
        }
        return 0;
}

bool vm_vtpm_is_ours(const struct vm_vtpm_xml *x) {
        return x->tpm && x->meta && !x->meta_error && strcmp(x->tpm_secret, x->m.secret_uuid) == 0;
}

static int dump(xmlDocPtr doc, char **ret) {
        xmlChar *out = NULL;
        int len = 0;
        xmlDocDumpMemory(doc, &out, &len);
        if (!out)
                return -ENOMEM;
        *ret = strdup((const char *) out);
        xmlFree(out);
        return *ret ? 0 : -ENOMEM;
}

static void remove_node(xmlNodePtr n) {
        xmlUnlinkNode(n);
        xmlFreeNode(n);
}

static bool set(xmlNodePtr n, const char *name, const char *value) {
        return !value[0] || xmlNewProp(n, BAD_CAST name, BAD_CAST value) != NULL;
}

int vm_xml_vtpm_add(const char *xml, const char *model, const struct vm_vtpm_meta *m, char **ret) {
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        xmlNodePtr root = doc ? root_of(doc) : NULL;
        xmlNodePtr devs = vm_xml_child(root, "devices");
        if (!devs)
                return -EBADMSG;
        if (vm_xml_child(devs, "tpm"))
                return -EEXIST;
        /* <tpm model=M><backend type='emulator' version='2.0'><encryption secret=U/>:
         * libvirt runs swtpm with its state encrypted by the secret's value. */
        xmlNodePtr tpm = xmlNewChild(devs, NULL, BAD_CAST "tpm", NULL);
        xmlNodePtr be = tpm ? xmlNewChild(tpm, NULL, BAD_CAST "backend", NULL) : NULL;
        xmlNodePtr enc = be ? xmlNewChild(be, NULL, BAD_CAST "encryption", NULL) : NULL;
        if (!enc || !set(tpm, "model", model) || !set(be, "type", "emulator") || !set(be, "version", "2.0") ||
            !set(enc, "secret", m->secret_uuid))
                return -ENOMEM;
        xmlNodePtr meta = vm_xml_child(root, "metadata");
        if (!meta) {
                /* <metadata> goes before <devices> and the rest, as libvirt writes it;
                 * libvirt accepts it anywhere, but keep the document tidy. */
                meta = xmlNewNode(NULL, BAD_CAST "metadata");
                if (!meta || !xmlAddPrevSibling(devs, meta))
                        return -ENOMEM;
        }
        xmlNodePtr old;
        while ((old = record_of(root)))
                remove_node(old);
        xmlNodePtr rec = xmlNewChild(meta, NULL, BAD_CAST "vtpm", NULL);
        xmlNsPtr ns = rec ? xmlNewNs(rec, BAD_CAST VM_VTPM_NS, BAD_CAST VM_VTPM_NS_PREFIX) : NULL;
        if (!ns)
                return -ENOMEM;
        xmlSetNs(rec, ns);
        if (!set(rec, "secret", m->secret_uuid) || !set(rec, "provider", m->provider) || !set(rec, "kek", m->kek) ||
            !set(rec, "method", m->method) || !set(rec, "cipher", m->cipher) || !set(rec, "wrapped", m->wrapped) ||
            !set(rec, "iv", m->iv) || !set(rec, "tag", m->tag) || !set(rec, "created", m->created))
                return -ENOMEM;
        return dump(doc, ret);
}

int vm_xml_vtpm_remove(const char *xml, char **ret) {
        _cleanup_(vm_xml_docp) xmlDocPtr doc = vm_xml_parse(xml);
        xmlNodePtr root = doc ? root_of(doc) : NULL;
        if (!root)
                return -EBADMSG;
        xmlNodePtr n;
        while ((n = vm_xml_child(vm_xml_child(root, "devices"), "tpm")))
                remove_node(n);
        while ((n = record_of(root)))
                remove_node(n);
        /* A <metadata> that held only the record goes too. */
        n = vm_xml_child(root, "metadata");
        bool empty = n != NULL;
        for (xmlNodePtr c = n ? n->children : NULL; c && empty; c = c->next)
                empty = c->type != XML_ELEMENT_NODE;
        if (empty)
                remove_node(n);
        return dump(doc, ret);
}

/* Decode a base64 attribute into a new buffer; "" gives none. */
static int decode(const char *s, size_t max, uint8_t **ret, size_t *ret_size) {
        *ret = NULL;
        *ret_size = 0;
        return s[0] ? b64_decode(s, max, ret, ret_size) : 0;
}

int vm_vtpm_meta_to_token(const struct vm_vtpm_meta *m, struct vmcrypt_token **ret) {
        _cleanup_(token_freep) struct vmcrypt_token *t = token_new();
        if (!t)
                return -ENOMEM;
        /* A token names the keyslot its secret opens; the vTPM secret opens none,
         * and no provider looks at it. */
        t->keyslot = 0;
        t->provider = strdup(m->provider);
        t->kek_id = strdup(m->kek);
        t->method = strdup(m->method);
        t->cipher = m->cipher[0] ? strdup(m->cipher) : NULL;
        if (!t->provider || !t->kek_id || !t->method || (m->cipher[0] && !t->cipher))
                return -ENOMEM;
        if (decode(m->wrapped, TOKEN_WRAPPED_MAX, &t->wrapped, &t->wrapped_size) < 0 ||
            decode(m->iv, TOKEN_IV_MAX, &t->iv, &t->iv_size) < 0 ||
            decode(m->tag, TOKEN_IV_MAX, &t->tag, &t->tag_size) < 0 || token_validate(t) < 0)
                return -EBADMSG;
        *ret = TAKE_PTR(t);
        return 0;
}
