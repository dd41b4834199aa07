#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when a header of include/pnn includes one from a higher layer.

The layer order (docs/architecture.md, "Layering"): core < simd, data < noise < physics < nn
< learn < train, io. Headers directly under include/pnn (pnn.hpp, embedded.hpp) are umbrellas and
may include anything. Prints each offending line as file:line and exits 1.
"""
import pathlib
import re
import sys

RANK = {"core": 0, "simd": 1, "data": 1, "noise": 2, "physics": 3, "nn": 4, "learn": 5, "train": 6, "io": 6}
INCLUDE = re.compile(r'\s*#\s*include\s*[<"]pnn/([a-z_]+)/([^>"]+)[>"]')


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent / "include" / "pnn"
    bad, checked = [], 0
    for path in sorted(root.rglob("*.hpp")):
        layer = path.relative_to(root).parts[0]
        if layer not in RANK:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            checked += 1
            target = m.group(1)
            if target not in RANK:
                bad.append(f"{path.relative_to(root.parent.parent)}:{number}: unknown layer pnn/{target}/")
            elif RANK[target] > RANK[layer]:
                bad.append(f"{path.relative_to(root.parent.parent)}:{number}: {layer}/ (rank {RANK[layer]}) includes "
                           f"pnn/{target}/{m.group(2)} (rank {RANK[target]})")
    for b in bad:
        print(b)
    if bad:
        print(f"check_layers: {len(bad)} includes run up the layer order core < simd, data < noise < physics "
              f"< nn < learn < train", file=sys.stderr)
        return 1
    print(f"check_layers: {checked} includes, none runs up the layer order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
