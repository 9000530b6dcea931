"""Summarises a `python -X importtime` log (stderr of a ComfyUI boot) as a tree of the slowest imports.

    python3 bench/gpu/import_times.py boot-importtime.log [--depth 6] [--min-ms 150]

Python prints each import after its children, with its own ("self") and cumulative microseconds and
its nesting as indentation; this rebuilds the tree and prints every import that took at least --min-ms
cumulatively, slowest first, down to --depth, then the self time per top-level package.
"""

import argparse
import collections
import re

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def parse(path):
    """[(self_us, cumulative_us, depth, name)] in the log's order (children before their parent)."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if m:
                rows.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    return rows


def children(rows, i):
    """Indexes of the direct children of rows[i]: the rows just above it that are one level deeper."""
    depth, out, j = rows[i][2], [], i - 1
    while j >= 0 and rows[j][2] > depth:
        if rows[j][2] == depth + 1:
            out.append(j)
        j -= 1
    return out


def print_tree(rows, i, max_depth, min_us):
    self_us, cum_us, depth, name = rows[i]
    print(f"{'  ' * depth}{cum_us / 1000:7.0f} ms  (self {self_us / 1000:5.0f})  {name}")
    if depth < max_depth:
        for k in sorted(children(rows, i), key=lambda k: -rows[k][1]):
            if rows[k][1] >= min_us:
                print_tree(rows, k, max_depth, min_us)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--min-ms", type=float, default=150)
    args = parser.parse_args()
    rows = parse(args.log)
    top = [i for i, r in enumerate(rows) if r[2] == 0]
    print(f"{sum(rows[i][1] for i in top) / 1000:.0f} ms in imports, {len(rows)} modules\n")
    for i in sorted(top, key=lambda i: -rows[i][1]):
        if rows[i][1] >= args.min_ms * 1000:
            print_tree(rows, i, args.depth, args.min_ms * 1000)
    by_package = collections.Counter()
    for self_us, _, _, name in rows:
        by_package[name.split(".")[0]] += self_us
    print("\nself time by top-level package:")
    for name, us in by_package.most_common(25):
        print(f"{us / 1000:7.0f} ms  {name}")


if __name__ == "__main__":
    main()
