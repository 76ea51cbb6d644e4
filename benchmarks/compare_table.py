#!/usr/bin/env python3
"""Prints one comparison table from the JSON lines of ember's bench-ops / bench-train and of
torch_reference.py (and, on CUDA, bench-ops-cuda's cuDNN / cuBLAS rows).

  compare_table.py DIR_OR_FILE... [--device cpu|cuda] [--markdown]

Op rows: ember's kernel passes (impl "ember") and ember's op+autograd round trip ("fwd+bwd",
impl "ember-autograd") beside PyTorch ("torch") and the vendor library ("cudnn", "cublas",
"cudart"); ratio = ember / other, so > 1 means ember is slower. "step sum" rows add each pass
times how often one training step runs it. Train rows: ember vs PyTorch eager (and the
CUDA-graph-captured step on CUDA). Needs only the Python standard library.
"""
import argparse
import glob
import json
import os
import sys

VENDOR = ("cudnn", "cublas", "cudart")
PASS_ORDER = {"fwd": 0, "bwd_input": 1, "bwd_weight": 2, "bwd": 3, "fwd+bwd": 4}


def load(paths):
    recs = []
    for p in paths:
        files = sorted(glob.glob(os.path.join(p, "*.json"))) if os.path.isdir(p) else [p]
        for f in files:
            with open(f) as fh:
                for line in fh:
                    line = line.strip()
                    if line.startswith("JSON "):
                        line = line[5:]
                    if not line.startswith("{"):
                        continue
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass
    return recs


def fmt(v, unit_us):
    if v is None:
        return "-"
    return "%.1f" % (v * 1e3) if unit_us else ("%.3f" % v if v >= 1 else "%.4f" % v)


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "-"
    return "%.2f" % (a / b)


class Table:
    def __init__(self, headers, markdown):
        self.headers, self.rows, self.md = headers, [], markdown

    def add(self, row):
        self.rows.append([str(c) for c in row])

    def sep(self):
        self.rows.append(None)

    def show(self):
        w = [len(h) for h in self.headers]
        for r in self.rows:
            if r:
                w = [max(a, len(c)) for a, c in zip(w, r)]
        if self.md:
            print("| " + " | ".join(self.headers) + " |")
            print("|" + "|".join("---" for _ in self.headers) + "|")
            for r in self.rows:
                if r:
                    print("| " + " | ".join(r) + " |")
            return
        line = lambda cells: "  ".join(c.ljust(w[0]) if i == 0 else
                                      (c.ljust(w[1]) if i == 1 else c.rjust(w[i]))
                                      for i, c in enumerate(cells))
        print(line(self.headers))
        print("-" * (sum(w) + 2 * (len(w) - 1)))
        for r in self.rows:
            print("-" * (sum(w) + 2 * (len(w) - 1)) if r is None else line(r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--device", default=None)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    recs = load(a.paths)
    if a.device:
        recs = [r for r in recs if r.get("device") == a.device]
    if not recs:
        print("compare_table.py: no results found in %s" % " ".join(a.paths), file=sys.stderr)
        return 1
    devices = sorted({r.get("device") for r in recs if r.get("bench") in ("op", "train")})

    for info in [r for r in recs if r.get("bench") == "info"]:
        print("info: " + ", ".join("%s=%s" % (k, v) for k, v in info.items() if k != "bench"))

    for dev in devices:
        cuda = dev == "cuda"
        unit = "us" if cuda else "ms"
        ops = [r for r in recs if r.get("bench") == "op" and r.get("device") == dev]
        order, by = [], {}
        for r in ops:
            key = (r["batch"], r["name"], r["pass"])
            if key not in by:
                by[key] = {}
                order.append(key)
            impl = r["impl"]
            if impl == "ember-autograd":
                impl = "ember"
            if impl in VENDOR:
                by[key]["vendor"] = r
                by[key]["vendor_name"] = impl
            by[key][impl] = r
        names = []
        for b, n, p in order:
            if (b, n) not in names:
                names.append((b, n))
        if names:
            heads = ["op", "pass", "x/step", "ember " + unit, "PyTorch " + unit, "ember/PyTorch"]
            if cuda:
                heads += ["cuDNN/cuBLAS " + unit, "ember/vendor", "check"]
            t = Table(heads, a.markdown)
            sums = {}
            last_batch = None
            for b, n in names:
                if last_batch is not None and b != last_batch:
                    t.sep()
                last_batch = b
                passes = sorted({p for (bb, nn, p) in order if bb == b and nn == n},
                                key=lambda p: PASS_ORDER.get(p, 9))
                for p in passes:
                    cell = by[(b, n, p)]
                    e = cell.get("ember", {}).get("ms")
                    tr = cell.get("torch", {}).get("ms")
                    v = cell.get("vendor", {}).get("ms")
                    cnt = (cell.get("ember") or cell.get("torch") or cell.get("vendor") or {}).get("count", 0)
                    group = "fwd+bwd" if p == "fwd+bwd" else "passes"
                    s = sums.setdefault((b, group), [0.0, 0.0, 0.0, True, True, True])
                    for i, val in enumerate((e, tr, v)):
                        if val is None:
                            s[3 + i] = False
                        else:
                            s[i] += cnt * val
                    row = ["%s (b%d)" % (n, b) if len(set(x[0] for x in names)) > 1 else n, p,
                           cnt, fmt(e, cuda), fmt(tr, cuda), ratio(e, tr)]
                    if cuda:
                        chk = cell.get("ember", {}).get("check", "")
                        vname = cell.get("vendor_name", "")
                        row += [fmt(v, cuda) + (" (%s)" % vname if vname and vname != "cudnn" else ""),
                                ratio(e, v), chk or "-"]
                    t.add(row)
            t.sep()
            for (b, group), s in sorted(sums.items()):
                label = ("step sum of kernel passes" if group == "passes"
                         else "step sum of fwd+bwd (autograd)")
                e, tr, v = (s[0] if s[3] else None, s[1] if s[4] else None, s[2] if s[5] else None)
                row = ["%s (b%d)" % (label, b), "", "", fmt(e, cuda), fmt(tr, cuda), ratio(e, tr)]
                if cuda:
                    row += [fmt(v, cuda), ratio(e, v), ""]
                t.add(row)
            print("\nPer-op times on %s (median of the samples; ratio > 1: ember slower)" % dev)
            t.show()

        trains = [r for r in recs if r.get("bench") == "train" and r.get("device") == dev]
        if trains:
            tb = {}
            for r in trains:
                tb.setdefault(r["batch"], {})[r["impl"]] = r
            heads = ["batch", "ember ms/step", "PyTorch eager ms", "ember/eager"]
            if cuda:
                heads += ["PyTorch graph ms", "ember/graph"]
            heads += ["ember img/s", "PyTorch img/s", "ember s/epoch60k", "PyTorch s/epoch60k",
                      "ember peak host MiB", "PyTorch peak host MiB"]
            if cuda:
                heads += ["ember peak dev MiB", "PyTorch eager peak dev MiB"]
            heads += ["ember loss", "PyTorch loss"]
            t = Table(heads, a.markdown)
            g = lambda r, k: None if r is None else r.get(k)
            f1 = lambda v, d=1: "-" if v is None else "%.*f" % (d, v)
            for b in sorted(tb):
                e, te, tg = tb[b].get("ember"), tb[b].get("torch-eager"), tb[b].get("torch-graph")
                row = [b, f1(g(e, "ms"), 2), f1(g(te, "ms"), 2), ratio(g(e, "ms"), g(te, "ms"))]
                if cuda:
                    row += [f1(g(tg, "ms"), 2), ratio(g(e, "ms"), g(tg, "ms"))]
                row += [f1(g(e, "img_per_s"), 0), f1(g(te, "img_per_s"), 0),
                        f1(g(e, "epoch60k_s"), 2), f1(g(te, "epoch60k_s"), 2),
                        f1(g(e, "peak_host_mib")), f1(g(te, "peak_host_mib"))]
                if cuda:
                    row += [f1(g(e, "peak_device_mib")), f1(g(te, "peak_device_mib"))]
                row += [f1(g(e, "loss"), 5), f1(g(te, "loss"), 5)]
                t.add(row)
            print("\nWhole training step on %s (forward, MSE, backward, Adam; median ms/step)" % dev)
            t.show()
    fails = [r for r in recs if r.get("check") == "FAIL"]
    if fails:
        print("\n%d result(s) FAILED their correctness check:" % len(fails))
        for r in fails:
            print("  %s %s %s %s batch %s" % (r.get("impl"), r.get("device"), r.get("name", "train"),
                                             r.get("pass", ""), r.get("batch")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
