/* The libxml2 helpers shared by src/vm's readers and editors of domain XML
 * (domain-xml.c, home-xml.c, vtpm-xml.c). */
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdbool.h>

/* Parse a domain XML: no network, no entity expansion, no error printing. NULL
 * when it does not parse. */
xmlDocPtr vm_xml_parse(const char *xml);
/* For _cleanup_: free *d unless NULL. */
void vm_xml_docp(xmlDocPtr *d);
/* Whether n is the element called name (n may be NULL). */
bool vm_xml_is(const xmlNode *n, const char *name);
/* The first child element of n called name, or NULL (n may be NULL). */
xmlNodePtr vm_xml_child(xmlNodePtr n, const char *name);
