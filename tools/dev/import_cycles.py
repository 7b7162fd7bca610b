#!/usr/bin/env python3
"""File-level import graph of a crate's src/: for each file, the crate modules it names
through `crate::`, `super::` or the crate's own name; reports cycles and exits 1 if any.

    python3 tools/dev/import_cycles.py src weir
    for d in schemas ingest features scorer online-learner monitor tests; do
        python3 tools/dev/import_cycles.py $d/src; done

A heuristic reader (regexes over code with comments and the trailing test module
removed), not a parser: it is how the renovation of 2026-12 checked that no file imports
another in a loop."""
import os, re, sys
root = sys.argv[1]  # path to src
crate_names = sys.argv[2:] or ['weir']
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            mod = rel[:-3].replace(os.sep, '::')
            if mod.endswith('::mod'): mod = mod[:-5]
            if mod in ('lib', 'main'): mod = mod
            files[mod] = p
mods = set(files)
def resolve(path):
    parts = path.split('::')
    best = None
    for i in range(1, len(parts) + 1):
        cand = '::'.join(parts[:i])
        if cand in mods: best = cand
    return best
edges = {}
for mod, p in files.items():
    src = open(p).read()
    # strip #[cfg(test)] mod tests { ... } at the end
    m = re.search(r'#\[cfg\(test\)\]\n(pub(\(crate\))? )?mod tests', src)
    body = src if not m else src[:m.start()]
    body = re.sub(r'//.*', '', body)
    targets = set()
    for m in re.finditer(r'\b(crate|super|' + '|'.join(crate_names) + r')::([A-Za-z_:]+(?:\{[^}]*\})?)', body):
        kind, rest = m.group(1), m.group(2)
        base = mod.split('::')
        if kind == 'super':
            # file foo/bar.rs: super = foo ; foo/mod.rs: super = parent of foo
            is_modrs = files[mod].endswith('mod.rs')
            parent = base[:-1] if not is_modrs else base[:-1]
            prefix = '::'.join(parent)
        else:
            prefix = ''
        head = rest.split('{')[0].rstrip(':')
        inner = re.findall(r'\{([^}]*)\}', rest)
        cands = [head] if not inner else [head + '::' + x.strip().split(' ')[0] for x in inner[0].split(',') if x.strip()]
        for c in cands:
            full = (prefix + '::' + c) if prefix else c
            t = resolve(full)
            if t and t != mod and not mod.startswith(t + '::') and not t.startswith(mod + '::'):
                targets.add(t)
            elif t and t != mod and t.startswith(mod + '::'):
                targets.add(t)
    edges[mod] = sorted(targets)
for mod in sorted(edges):
    if mod in ('lib',): continue
    print(f'{mod:28} -> {", ".join(edges[mod])}')
# cycles (ignore lib, which only declares/re-exports)
g = {k: [t for t in v if t != 'lib'] for k, v in edges.items() if k != 'lib'}
color = {}; stack = []; cycles = []
def dfs(u):
    color[u] = 1; stack.append(u)
    for v in g.get(u, []):
        if color.get(v) == 1: cycles.append(stack[stack.index(v):] + [v])
        elif not color.get(v): dfs(v)
    stack.pop(); color[u] = 2
for u in g:
    if not color.get(u): dfs(u)
print('cycles:', cycles if cycles else 'none')
sys.exit(1 if cycles else 0)
