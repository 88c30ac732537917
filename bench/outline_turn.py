#!/usr/bin/env python3
"""Largest turning angle (degrees) between successive 1 mm steps along an appliance's outline,
measured on the written solid alone (binary little-endian PLY as tracecast writes it): the solid
is the skin (first half of the vertices), the outer surface (second half) and the rim joining
them; each rim triangle has exactly two skin corners, which are an edge of the skin's border.
Prints: outline length (mm), largest turn (degrees) over the outline (the longest border loop)."""
import math, struct, sys
from collections import defaultdict

def read_ply(path):
    with open(path, 'rb') as f:
        header = b''
        while not header.endswith(b'end_header\n'):
            header += f.readline()
        lines = header.split(b'\n')
        nv = int(next(l for l in lines if l.startswith(b'element vertex')).split()[2])
        nf = int(next(l for l in lines if l.startswith(b'element face')).split()[2])
        props = [l.split()[2] for l in lines if l.startswith(b'property float') or l.startswith(b'property double')]
        size = 4 if b'property float x' in header else 8
        fmt = '<%d%s' % (len(props), 'f' if size == 4 else 'd')
        stride = struct.calcsize(fmt)
        data = f.read(nv * stride)
        verts = [struct.unpack_from(fmt, data, i * stride)[:3] for i in range(nv)]
        faces = []
        for _ in range(nf):
            c = f.read(1)[0]
            faces.append(struct.unpack('<%di' % c, f.read(4 * c)))
    return verts, faces

def main(path):
    v, faces = read_ply(path)
    n = len(v) // 2
    nxt = {}
    for t in faces:
        skin = [x for x in t if x < n]
        if len(skin) == 2 and len(t) == 3:
            # rim triangle (a, b, b+n): the skin edge a -> b
            a, b = t[0], t[1]
            if a < n and b < n:
                nxt[a] = b
    seen, loops = set(), []
    for s in nxt:
        if s in seen:
            continue
        loop, x = [], s
        while x not in seen and x in nxt:
            seen.add(x); loop.append(x); x = nxt[x]
        loops.append(loop)
    def length(loop):
        return sum(math.dist(v[loop[i]], v[loop[(i + 1) % len(loop)]]) for i in range(len(loop)))
    outline = max(loops, key=length)
    pts = [v[i] for i in outline]
    even, carry = [], 0.0
    for i in range(len(pts)):
        a, b = pts[i], pts[(i + 1) % len(pts)]
        L = math.dist(a, b)
        s = carry
        while s < L:
            even.append(tuple(a[k] + (b[k] - a[k]) * s / L for k in range(3)))
            s += 1.0
        carry = s - L
    worst = 0.0
    m = len(even)
    for i in range(m):
        p, q, r = even[i - 1], even[i], even[(i + 1) % m]
        u = [q[k] - p[k] for k in range(3)]; w = [r[k] - q[k] for k in range(3)]
        nu, nw = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(x * x for x in w))
        if nu < 1e-9 or nw < 1e-9:
            continue
        c = max(-1.0, min(1.0, sum(u[k] * w[k] for k in range(3)) / (nu * nw)))
        worst = max(worst, math.degrees(math.acos(c)))
    print('%.1f %.1f' % (length(outline), worst))

if __name__ == '__main__':
    main(sys.argv[1])
