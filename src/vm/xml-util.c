/* libxml2 helpers of src/vm: see xml-util.h. */
#include "vm/xml-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vm_xml_docp(xmlDocPtr *d) {
        if (*d)
                xmlFreeDoc(*d);
}

xmlDocPtr vm_xml_parse(const char *xml) {
        /* NONET: a domain XML never needs the network; no entities either. */
        return xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

bool vm_xml_is(const xmlNode *n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0;
}

xmlNodePtr vm_xml_child(xmlNodePtr n, const char *name) {
        for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
                if (vm_xml_is(c, name))
                        return c;
        return NULL;
}

char *vm_xml_attr_dup(xmlNodePtr n, const char *name) {
        xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name) : NULL;
        if (!v)
                return NULL;
        char *s = strdup((const char *) v);
        xmlFree(v);
        return s;
}

int vm_xml_attr_copy(xmlNodePtr n, const char *name, char *buf, size_t size) {
        buf[0] = '\0';
        xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name) : NULL;
        if (!v)
                return 0;
        int len = snprintf(buf, size, "%s", (const char *) v);
        xmlFree(v);
        if (len < 0 || (size_t) len >= size) {
                buf[0] = '\0';
                return -E2BIG;
        }
        return 0;
}
