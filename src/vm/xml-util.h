/* The libxml2 helpers shared by src/vm's readers and editors of domain XML
 * (domain-xml.c, home-xml.c, vtpm-xml.c). */
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

/* Parse a domain XML: no network, no entity expansion, no error printing. NULL
 * when it does not parse. */
xmlDocPtr vm_xml_parse(const char *xml);
/* For _cleanup_: free *d unless NULL. */
void vm_xml_docp(xmlDocPtr *d);
/* Whether n is the element called name (n may be NULL). */
bool vm_xml_is(const xmlNode *n, const char *name);
/* The first child element of n called name, or NULL (n may be NULL). */
xmlNodePtr vm_xml_child(xmlNodePtr n, const char *name);
/* Attribute name of n (no namespace: libvirt reads no other), malloc'ed; NULL
 * when absent (or n is NULL, or out of memory). */
char *vm_xml_attr_dup(xmlNodePtr n, const char *name);
/* Attribute name of n into buf ("" when absent or n is NULL); -E2BIG, with "" in
 * buf, when it does not fit: a value is whole or not at all. */
int vm_xml_attr_copy(xmlNodePtr n, const char *name, char *buf, size_t size);
