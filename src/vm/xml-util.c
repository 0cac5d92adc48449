/* libxml2 helpers of src/vm: see xml-util.h. */
#include "vm/xml-util.h"

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
