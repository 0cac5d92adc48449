#!/usr/bin/python3
"""docs/manager-openapi.yaml describes the manager's routes: the same paths, methods
and privileges (x-privilege) as `vmcrypt-manager routes` prints from the table the
server dispatches on. Usage: openapi.py SOURCE_ROOT VMCRYPT_MANAGER"""
import subprocess
import sys

import yaml

root, manager = sys.argv[1], sys.argv[2]
with open(f"{root}/docs/manager-openapi.yaml") as f:
    doc = yaml.safe_load(f)
documented = set()
for path, ops in doc["paths"].items():
    for method, op in ops.items():
        documented.add((method.upper(), path, str(op.get("x-privilege", ""))))
served = set()
for line in subprocess.run([manager, "routes"], check=True, capture_output=True, text=True).stdout.splitlines():
    method, path, privilege = line.split()
    served.add((method, path, privilege))
bad = False
for r in sorted(served - documented):
    print(f"served but not in the OpenAPI document (or another privilege there): {r}")
    bad = True
for r in sorted(documented - served):
    print(f"in the OpenAPI document but not served (or another privilege): {r}")
    bad = True
if not bad:
    print(f"{len(served)} routes match")
sys.exit(1 if bad else 0)
