#!/usr/bin/env python3
"""check_function_length: fails when a C function is longer than --max lines.

A function's length is counted from the line of its name to the line of its
closing brace, both included. The scan strips comments, string and character
literals and preprocessor lines, then reads every top-level `{` that follows a
parameter list `)` as a function body (struct, union, enum and initializer
braces follow something else), and matches braces to find its end.

  tools/check_function_length.py [--max 120] [--allow FILE] DIR_OR_FILE...

--allow FILE lists known offenders, one "path:function" a line (# comments):
they are reported but do not fail the check, so a file another change is
rewriting can be listed until that change lands. An entry that no longer
exceeds the limit is reported as stale, so the list only shrinks.
Exit status: 0 when no unlisted function exceeds the limit, 1 otherwise.
"""
import argparse
import os
import re
import sys


def strip_code(text):
    """Comments, literals and preprocessor lines blanked; newlines kept."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start:
            j = i
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "#":  # a directive, with its continuations
                while j < n and text[j] != "\n":
                    if text[j] == "\\" and j + 1 < n and text[j + 1] == "\n":
                        out.append("\n")
                        j += 2
                        continue
                    j += 1
                i = j
                continue
        at_line_start = False
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * max(0, min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            if c == "\n":
                at_line_start = True
            i += 1
    return "".join(out)


NAME_BEFORE_PARAMS = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\($")


def functions(path):
    """Yields (name, first_line, last_line) of each function defined in path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        code = strip_code(f.read())
    depth = 0
    stmt_start = 0  # offset just after the last top-level ';' or '}'
    i = 0
    while i < len(code):
        c = code[i]
        if c == "{" and depth == 0:
            head = code[stmt_start:i].rstrip()
            if head.endswith(")") and "=" not in head.split("(")[0]:
                # find the '(' matching the last ')': the parameter list
                level, j = 0, len(head) - 1
                while j >= 0:
                    if head[j] == ")":
                        level += 1
                    elif head[j] == "(":
                        level -= 1
                        if level == 0:
                            break
                    j -= 1
                m = NAME_BEFORE_PARAMS.search(head[: j + 1])
                if m:
                    name_at = stmt_start + m.start(1)
                    level, k = 0, i
                    while k < len(code):
                        if code[k] == "{":
                            level += 1
                        elif code[k] == "}":
                            level -= 1
                            if level == 0:
                                break
                        k += 1
                    first = code.count("\n", 0, name_at) + 1
                    last = code.count("\n", 0, k) + 1
                    yield m.group(1), first, last
                    i = k + 1
                    stmt_start = i
                    continue
            depth += 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                stmt_start = i + 1
        elif c == ";" and depth == 0:
            stmt_start = i + 1
        i += 1


def c_files(targets):
    for t in targets:
        if os.path.isdir(t):
            for root, _, names in sorted(os.walk(t)):
                for name in sorted(names):
                    if name.endswith((".c", ".h")):
                        yield os.path.join(root, name)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=120)
    ap.add_argument("--allow", help="file of known offenders, path:function a line")
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()
    allowed = set()
    if args.allow:
        with open(args.allow, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    allowed.add(line)
    over, listed, seen = [], [], set()
    for path in c_files(args.targets):
        for name, first, last in functions(path):
            key = f"{os.path.normpath(path)}:{name}"
            length = last - first + 1
            if length > args.max:
                seen.add(key)
                row = f"{path}:{first}: {name} is {length} lines (max {args.max})"
                (listed if key in allowed else over).append(row)
    for row in listed:
        print(f"known (listed in {args.allow}): {row}")
    for key in sorted(allowed - seen):
        print(f"stale: {key} is within the limit now; remove it from {args.allow}")
    for row in over:
        print(row)
    print(f"check_function_length: {len(over)} over {args.max} lines"
          f"{f', {len(listed)} known' if listed else ''}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
