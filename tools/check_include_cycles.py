#!/usr/bin/env python3
"""check_include_cycles: fails when the quoted includes of C files form a cycle.

Each module is a pair x.c + x.h (one node); a header x_impl.h is module x's
private header and belongs to module x. An edge a -> b means a file of
module a includes a header of module b. Any cycle of two or more modules is
reported with the includes that close it.

  tools/check_include_cycles.py DIR...

Exit status: 0 without a cycle, 1 otherwise.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(name):
    base = os.path.splitext(os.path.basename(name))[0]
    return base[: -len("_impl")] if base.endswith("_impl") else base


def main():
    dirs = sys.argv[1:]
    if not dirs:
        print(__doc__)
        return 2
    known = {}
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                known[name] = os.path.join(d, name)
    edges = {}  # module -> {module: "file includes header"}
    for name, path in known.items():
        with open(path, encoding="utf-8", errors="replace") as f:
            for inc in INCLUDE.findall(f.read()):
                inc = os.path.basename(inc)
                if inc in known and module_of(inc) != module_of(name):
                    edges.setdefault(module_of(name), {}).setdefault(
                        module_of(inc), f"{path} includes {inc}")

    # Tarjan's strongly connected components.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    for comp in cycles:
        print("include cycle: " + " <-> ".join(comp))
        for a in comp:
            for b, why in sorted(edges.get(a, {}).items()):
                if b in comp:
                    print(f"  {why}")
    print(f"check_include_cycles: {len(cycles)} cycle(s) among {len(known)} files")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
