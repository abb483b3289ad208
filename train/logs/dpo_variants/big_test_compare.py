import json, sys
from math import comb
def load(p):
    return {(r['video'], r['index'], r['form']): r for r in map(json.loads, open(p))}
def p_exact(b, c):
    n = b + c
    if n == 0: return 1.0
    k = min(b, c)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)
base, other = load(sys.argv[1]), load(sys.argv[2])
for label, keep in [("all", lambda v: True), ("first 400", lambda v: int(v.split('_')[1]) < 400), ("other 1600", lambda v: int(v.split('_')[1]) >= 400)]:
    for form, prop in [("mc", "right"), ("open", "right"), ("mc", "rejectedStyle")]:
        keys = [k for k in base if k[2] == form and keep(k[0])]
        b = sum(base[k][prop] and not other[k][prop] for k in keys)
        c = sum(other[k][prop] and not base[k][prop] for k in keys)
        rb = sum(base[k][prop] for k in keys) / len(keys); ro = sum(other[k][prop] for k in keys) / len(keys)
        print(f"{label:10s} {form:4s} {prop:13s} n={len(keys)} {100*rb:.2f}% -> {100*ro:.2f}%  only base {b}, only other {c}, p = {p_exact(b, c):.3g}")
