#!/usr/bin/env python3
"""Lists the functions of src/ longer than a limit (default 100 lines), longest first.

A function runs from its `fn` line to the first later line that closes it at the same
indentation; test modules (from `#[cfg(test)]` on) and test files (`tests.rs`, `*_tests.rs`) are
left out. Usage: scripts/long-functions.py [LIMIT] [DIR]
"""
import pathlib
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def functions(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("#[cfg(test)]"):
            lines = lines[:i]
            break
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            if lines[j].startswith(indent + "}") and not lines[j].startswith(indent + "} ") or lines[j] == indent + "}":
                yield m.group(7), i + 1, j - i + 1
                break


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "src")
    long = []
    for path in sorted(root.rglob("*.rs")):
        if path.name == "tests.rs" or path.name.endswith("_tests.rs"):
            continue
        for name, line, count in functions(path):
            if count > limit:
                long.append((count, f"{path}:{line}", name))
    for count, place, name in sorted(long, reverse=True):
        print(f"{count:4} {place} {name}")
    print(f"{len(long)} functions over {limit} lines")


main()
