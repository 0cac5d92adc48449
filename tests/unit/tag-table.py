#!/usr/bin/python3
"""kmip_tag_name() finds names by binary search in tag_names[] of src/kmip/tags.c:
an entry out of order would silently turn into "Unknown". Checks that the table is
strictly ascending (sorted, no duplicates). Usage: tag-table.py SRC_ROOT"""
import re
import sys

consts = {name: int(v, 16) for name, v in
          re.findall(r"\b(KMIP_TAG_\w+)\s*=\s*(0x[0-9A-Fa-f]+)", open(sys.argv[1] + "/src/kmip/tags.h").read())}
text = open(sys.argv[1] + "/src/kmip/tags.c").read()
start = text.index("tag_names[] = {")
body = text[start:text.index("};", start)]
names = re.findall(r"\{\s*(KMIP_TAG_\w+)\s*,", body)
missing = [n for n in names if n not in consts]
if missing:
    sys.exit("FAIL: tags.c names tags that tags.h does not define: %s" % missing[:5])
values = [consts[n] for n in names]
if len(values) < 100:
    sys.exit("FAIL: found only %d entries in tag_names[]: has its form changed?" % len(values))
for a, b in zip(values, values[1:]):
    if b <= a:
        sys.exit("FAIL: tag_names[] is not strictly ascending at 0x%06X, 0x%06X" % (a, b))
print("ok: %d tag names, strictly ascending" % len(values))
