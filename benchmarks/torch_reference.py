#!/usr/bin/env python3
"""PyTorch reference for ember's benchmarks: the seed U-Net's training step and its ops.

Measures, with the same shapes, names and JSON fields as ember's bench-ops / bench-train:
  * the whole training step (forward, MSE loss, backward, Adam lr 1e-4) on synthetic data made
    once on the device (x uniform in [-1, 1), fixed N(0, 1) noise; noisy = 0.5 x + 0.5 noise):
    eager on CPU and CUDA ("torch-eager"), and on CUDA also the step captured in a CUDA graph
    ("torch-graph");
  * every op of the network at batch --op-batch: fwd, bwd_input / bwd_weight (conv, convT,
    linear) or bwd (the others), each alone from a retained graph (torch.autograd.grad), and
    fwd+bwd (module call + backward).
CPU timing: time.perf_counter per call. CUDA: cudaEvents around --reps back-to-back calls per
sample. Median and min over --iters samples after --warmup calls. TF32 is off unless --tf32
(ember computes in strict FP32). Runs with PyTorch 1.13 (Debian python3-torch) and 2.x.

  torch_reference.py --device cpu|cuda [--threads N] [--batch 32,128,1024] [--op-batch 128]
                     [--iters N] [--op-iters N] [--warmup N] [--reps N] [--json FILE]
                     [--skip-ops] [--skip-train] [--only SUBSTRING] [--tiny] [--tf32]

Weights from ember: `--eval-safetensors MODEL.safetensors` (written by fashion-denoise
--export-safetensors) loads ember's trained U-Net into this PyTorch U-Net and reports its test
MSE on the exact inputs ember scored it on (MODEL.testset.safetensors: x and the fixed noise;
noisy = 0.5 x + 0.5 noise, eval mode, batches of 1000, MSE over all test pixels), next to ember's
own figure stored in the file's metadata. It also rebuilds x from the FashionMNIST test file
(--data, default $EMBER_DATA or /usr/share/datasets/fashion-mnist) with PyTorch's antialiased
resize and reports how far ember's exported x is from it. Needs the `safetensors` package.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

IMG, CH = 16, 1


# ---- the seed U-Net (same structure and parameter names as include/ember/models/unet.hpp) ----
class DownBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.model(x)


class UpBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(2 * cin, cout, 3, 2, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x, skip):
        return self.model(torch.cat((x, skip), 1))


class UNet(nn.Module):
    def __init__(self, img=IMG, ch=CH):
        super().__init__()
        d0, d1, d2, L = 16, 32, 64, img // 4
        self.down0 = nn.Sequential(nn.Conv2d(ch, d0, 3, 1, 1), nn.BatchNorm2d(d0), nn.ReLU())
        self.down1 = DownBlock(d0, d1)
        self.down2 = DownBlock(d1, d2)
        self.to_vec = nn.Sequential(nn.Flatten(), nn.ReLU())
        self.dense_emb = nn.Sequential(
            nn.Linear(d2 * L * L, d1), nn.ReLU(), nn.Linear(d1, d1), nn.ReLU(),
            nn.Linear(d1, d2 * L * L), nn.ReLU())
        self.up0 = nn.Sequential(nn.Unflatten(1, (d2, L, L)), nn.Conv2d(d2, d2, 3, 1, 1),
                                 nn.BatchNorm2d(d2), nn.ReLU())
        self.up1 = UpBlock(d2, d1)
        self.up2 = UpBlock(d1, d0)
        self.out = nn.Sequential(nn.Conv2d(d0, d0, 3, 1, 1), nn.BatchNorm2d(d0), nn.ReLU(),
                                 nn.Conv2d(d0, ch, 3, 1, 1))

    def forward(self, x):
        a = self.down0(x)
        b = self.down1(a)
        c = self.down2(b)
        v = self.dense_emb(self.to_vec(c))
        u0 = self.up0(v)
        u1 = self.up1(u0, c)
        u2 = self.up2(u1, b)
        return self.out(u2)


# ---- the ops, in the order and with the names of benchmarks/bench_common.hpp ----
def unet_ops():
    hw = lambda h: " @%dx%d" % (h, h)
    ops = []
    for c, k, h, n in [(1, 16, 16, 1), (16, 32, 16, 1), (32, 32, 16, 1), (32, 64, 8, 1),
                       (64, 64, 8, 1), (64, 64, 4, 1), (32, 32, 8, 1), (16, 16, 16, 2),
                       (16, 1, 16, 1)]:
        ops.append(dict(kind="conv", C=c, K=k, H=h, count=n, name="conv3x3 %d->%d%s" % (c, k, hw(h))))
    for c, k, h in [(128, 32, 4), (64, 16, 8)]:
        ops.append(dict(kind="convT", C=c, K=k, H=h, count=1,
                        name="convT3x3 s2 %d->%d%s" % (c, k, hw(h))))
    for c, h, n in [(16, 16, 4), (32, 16, 2), (64, 8, 2), (64, 4, 1), (32, 8, 2)]:
        ops.append(dict(kind="batchnorm", C=c, K=c, H=h, count=n, name="batchnorm %dch%s" % (c, hw(h))))
    for c, h, n in [(16, 16, 4), (32, 16, 2), (64, 8, 2), (64, 4, 3), (32, 1, 2), (32, 8, 2)]:
        name = "relu %d features" % c if h == 1 else "relu %dch%s" % (c, hw(h))
        ops.append(dict(kind="relu", C=c, K=c, H=h, count=n, name=name))
    for c, h in [(32, 16), (64, 8)]:
        ops.append(dict(kind="maxpool", C=c, K=c, H=h, count=1, name="maxpool2 %dch%s" % (c, hw(h))))
    for i, o in [(1024, 32), (32, 32), (32, 1024)]:
        ops.append(dict(kind="linear", C=i, K=o, H=1, count=1, name="linear %d->%d" % (i, o)))
    for a, b, h in [(64, 64, 4), (32, 32, 8)]:
        ops.append(dict(kind="concat", C=a, K=b, H=h, count=1, name="concat %d+%dch%s" % (a, b, hw(h))))
    return ops


def pass_flops(op, n):
    if op["kind"] == "conv":
        return 2.0 * n * op["K"] * op["C"] * 9 * op["H"] * op["H"]
    if op["kind"] == "convT":
        return 2.0 * n * op["C"] * op["K"] * 9 * op["H"] * op["H"]
    if op["kind"] == "linear":
        return 2.0 * n * op["C"] * op["K"]
    return 0.0


def pass_count(op, p):
    if op["kind"] == "conv" and op["C"] == 1 and p == "bwd_input":
        return 0
    return op["count"]


def build_op(op, n, dev):
    """Returns (fn(*inputs) -> y, inputs (requiring grad), params)."""
    kind, c, k, h = op["kind"], op["C"], op["K"], op["H"]
    mod = None
    if kind == "conv":
        mod, shapes = nn.Conv2d(c, k, 3, 1, 1), [(n, c, h, h)]
    elif kind == "convT":
        mod, shapes = nn.ConvTranspose2d(c, k, 3, 2, 1, 1), [(n, c, h, h)]
    elif kind == "batchnorm":
        mod, shapes = nn.BatchNorm2d(c), [(n, c, h, h)]
    elif kind == "relu":
        mod, shapes = nn.ReLU(), [(n, c) if h == 1 else (n, c, h, h)]
    elif kind == "maxpool":
        mod, shapes = nn.MaxPool2d(2), [(n, c, h, h)]
    elif kind == "linear":
        mod, shapes = nn.Linear(c, k), [(n, c)]
    else:
        shapes = [(n, c, h, h), (n, k, h, h)]
    inputs = [torch.randn(*s, device=dev, requires_grad=True) for s in shapes]
    if mod is not None:
        mod = mod.to(dev).train()
        return (lambda x: mod(x)), inputs, list(mod.parameters())
    return (lambda a, b: torch.cat((a, b), 1)), inputs, []


class Timer:
    def __init__(self, dev, warmup, iters, reps):
        self.dev, self.warmup, self.iters, self.reps = dev, warmup, iters, reps

    def __call__(self, fn):
        """Milliseconds per call: (median, min) of `iters` samples."""
        for _ in range(self.warmup):
            fn()
        samples = []
        if self.dev == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            for _ in range(self.iters):
                start.record()
                for _ in range(self.reps):
                    fn()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / self.reps)
        else:
            for _ in range(self.iters):
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(samples), min(samples)


class Out:
    def __init__(self, path):
        self.f = open(path, "w") if path else None

    def emit(self, obj):
        line = json.dumps(obj)
        print("JSON " + line, flush=True)
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()


def num(v, digits=6):
    if v is None or not math.isfinite(v):
        return None
    return float("%.*g" % (digits, v))


def bench_ops(a, out, timer, dev):
    n = a.op_batch
    print("\nPyTorch per-op, batch %d (ms per call)" % n)
    print("%-26s %-10s %11s %11s %9s" % ("op", "pass", "median ms", "min ms", "GFLOP/s"))
    for op in unet_ops():
        if a.only and a.only not in op["name"]:
            continue
        torch.manual_seed(0)
        fn, inputs, params = build_op(op, n, dev)
        y = fn(*inputs)
        gy = torch.randn_like(y)
        if op["kind"] in ("conv", "convT", "linear"):
            grads = [("bwd_input", inputs), ("bwd_weight", params)]
        else:
            grads = [("bwd", inputs + params)]

        def fwd_bwd():
            fn(*inputs).backward(gy)

        passes = [("fwd", lambda: fn(*inputs))]
        for pname, wrt in grads:
            passes.append((pname, (lambda wrt=wrt: torch.autograd.grad(y, wrt, gy, retain_graph=True))))
        passes.append(("fwd+bwd", fwd_bwd))
        for pname, f in passes:
            med, mn = timer(f)
            flops = pass_flops(op, n) * (3 if pname == "fwd+bwd" else (0 if pname == "bwd" else 1))
            gf = flops / (med * 1e-3) / 1e9 if flops > 0 and med > 0 else None
            out.emit({"bench": "op", "impl": "torch", "device": dev, "batch": n, "name": op["name"],
                      "kind": op["kind"], "pass": pname,
                      "count": op["count"] if pname == "fwd+bwd" else pass_count(op, pname),
                      "iters": timer.iters, "ms": num(med), "min_ms": num(mn), "us": num(med * 1e3),
                      "min_us": num(mn * 1e3), "gflops": num(gf, 4)})
            print("%-26s %-10s %11.4f %11.4f %9s" % (op["name"], pname, med, mn,
                                                     "%.1f" % gf if gf else "-"), flush=True)


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def bench_train(a, out, dev, batch, mode, iters, warmup):
    if dev == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    torch.manual_seed(0)
    m = UNet().to(dev).train()
    kw = {"capturable": True} if mode == "graph" else {}
    opt = torch.optim.Adam(m.parameters(), lr=1e-4, **kw)
    x = torch.rand(batch, CH, IMG, IMG, device=dev) * 2 - 1
    noise = torch.randn_like(x)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.mse_loss(m(0.5 * x + 0.5 * noise), x)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    if mode == "eager":
        loss_first = step().item()
        run = step
    else:  # the whole step captured in one CUDA graph (PyTorch's documented recipe)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for i in range(3):
                l = step()
                if i == 0:
                    loss_first = l.item()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=False)
        with torch.cuda.graph(g):
            static_loss = step()
        run = lambda: (g.replay(), static_loss)[1]
    for _ in range(warmup):
        run()
    sync()
    samples = []
    loss = None
    for _ in range(iters):
        t0 = time.perf_counter()
        loss = run()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    last = loss.item()
    med, mn = statistics.median(samples), min(samples)
    dev_mib = torch.cuda.max_memory_allocated() / 2 ** 20 if dev == "cuda" else None
    rec = {"bench": "train", "impl": "torch-" + mode, "device": dev, "batch": batch, "iters": iters,
           "ms": num(med), "min_ms": num(mn), "img_per_s": num(batch / (med * 1e-3)),
           "epoch60k_s": num(60000.0 / batch * med * 1e-3), "peak_host_mib": num(peak_rss_mib(), 5),
           "peak_device_mib": num(dev_mib, 5), "loss_first": num(loss_first), "loss": num(last),
           "check": "PASS" if math.isfinite(last) and last < loss_first else "FAIL"}
    out.emit(rec)
    print("%-12s %6d %11.3f %11.3f %10.0f %12.2f %14s %14s %10.5f" % (
        rec["impl"], batch, med, mn, rec["img_per_s"], rec["epoch60k_s"],
        "%.1f" % rec["peak_host_mib"] if rec["peak_host_mib"] else "-",
        "%.1f" % dev_mib if dev_mib is not None else "-", last), flush=True)
    return rec


def eval_safetensors(a):
    """--eval-safetensors: ember's exported U-Net scored by PyTorch on ember's test inputs."""
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        print("torch_reference.py: --eval-safetensors needs the safetensors package "
              "(/usr/bin/python3 -m pip install --break-system-packages safetensors)", file=sys.stderr)
        return 2
    path = a.eval_safetensors
    testset = a.testset or (path[:-len(".safetensors")] if path.endswith(".safetensors") else path) \
        + ".testset.safetensors"
    if a.threads:
        torch.set_num_threads(a.threads)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    model = UNet()
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    # ember's BatchNorm keeps no num_batches_tracked (used by PyTorch only when momentum=None).
    bad = [k for k in missing if not k.endswith(".num_batches_tracked")]
    if bad or unexpected:
        print("torch_reference.py: %s does not fit the U-Net: missing %s, unexpected %s"
              % (path, bad, unexpected), file=sys.stderr)
        return 1
    model.eval()
    ts = load_file(testset)
    x, noise = ts["x"], ts["noise"]
    n = x.shape[0]

    def score(xs):
        se = se_noisy = 0.0
        with torch.no_grad():
            for j in range(0, n, 1000):
                xb, nb = xs[j:j + 1000], noise[j:j + 1000]
                noisy = xb * 0.5 + nb * 0.5
                se += F.mse_loss(model(noisy), xb).item() * xb.numel()
                se_noisy += F.mse_loss(noisy, xb).item() * xb.numel()
        return se / xs.numel(), se_noisy / xs.numel()

    mse, noisy_mse = score(x)
    rec = {"bench": "eval_safetensors", "impl": "torch", "torch": torch.__version__,
           "model": path, "testset": testset, "images": n, "torch_test_mse": mse,
           "torch_noisy_mse": noisy_mse,
           "ember_test_mse": float(meta["ember_test_mse"]) if "ember_test_mse" in meta else None,
           "ember_noisy_mse": float(meta["ember_noisy_mse"]) if "ember_noisy_mse" in meta else None,
           "noise_mean": noise.mean().item(), "noise_std": noise.std().item()}
    # Independent check of the exported images: FashionMNIST's test file through PyTorch.
    data_dir = a.data or os.environ.get("EMBER_DATA") or "/usr/share/datasets/fashion-mnist"
    idx = os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")
    if os.path.exists(idx):
        import gzip
        raw = gzip.open(idx, "rb").read()
        cnt, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
        im = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(cnt, 1, rows, cols)
        ref = F.interpolate(im.float() / 255, size=(IMG, IMG), mode="bilinear",
                            align_corners=False, antialias=True) * 2 - 1
        if ref.shape == x.shape:
            rec["x_max_abs_diff_vs_torch_preprocessing"] = (ref - x).abs().max().item()
            rec["torch_test_mse_torch_x"] = score(ref)[0]
    print("PyTorch %s on ember's exported U-Net (%s), %d test images:" % (torch.__version__, path, n))
    print("  test MSE         PyTorch %.9g   ember %s" % (mse, meta.get("ember_test_mse", "?")))
    print("  noisy-input MSE  PyTorch %.9g   ember %s" % (noisy_mse, meta.get("ember_noisy_mse", "?")))
    if rec["ember_test_mse"]:
        rec["rel_diff"] = abs(mse - rec["ember_test_mse"]) / rec["ember_test_mse"]
        print("  relative difference %.2e" % rec["rel_diff"])
    if rec.get("x_max_abs_diff_vs_torch_preprocessing") is not None:
        print("  exported x vs PyTorch's own preprocessing of %s: max |diff| %.3g;"
              " test MSE with PyTorch's x %.9g"
              % (idx, rec["x_max_abs_diff_vs_torch_preprocessing"], rec["torch_test_mse_torch_x"]))
    Out(a.json).emit(rec)
    return 0


def int_list(s):
    return [int(v) for v in s.split(",") if v]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--batch", type=int_list, default=None, help="train-step batch sizes (default 32,128,1024)")
    ap.add_argument("--op-batch", type=int, default=None, help="per-op batch (default 128)")
    ap.add_argument("--iters", type=int, default=None, help="timed train steps (default cpu 10, cuda 50)")
    ap.add_argument("--op-iters", type=int, default=None, help="per-op samples (default: --iters, else cpu 20, cuda 100)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None, help="CUDA: op calls per timed sample (default 10)")
    ap.add_argument("--json", default="")
    ap.add_argument("--only", default="", help="only ops whose name contains this")
    ap.add_argument("--skip-ops", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--no-graph", action="store_true", help="CUDA: skip the CUDA-graph train step")
    ap.add_argument("--tiny", action="store_true", help="a few iterations at batch 4")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in cuDNN and cuBLAS")
    ap.add_argument("--eval-safetensors", default="", metavar="MODEL",
                    help="score ember's exported U-Net (fashion-denoise --export-safetensors) and exit")
    ap.add_argument("--testset", default="", help="its test inputs (default MODEL.testset.safetensors)")
    ap.add_argument("--data", default="", help="FashionMNIST directory for the preprocessing check")
    a = ap.parse_args()
    if a.eval_safetensors:
        return eval_safetensors(a)
    dev = a.device
    cuda = dev == "cuda"
    if cuda and not torch.cuda.is_available():
        print("torch_reference.py: CUDA is not available to this PyTorch", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    if a.batch is None:
        a.batch = [4] if a.tiny else [32, 128, 1024]
    if a.op_batch is None:
        a.op_batch = 4 if a.tiny else 128
    iters = a.iters or (2 if a.tiny else (50 if cuda else 10))
    op_iters = a.op_iters or a.iters or (3 if a.tiny else (100 if cuda else 20))
    warmup = a.warmup if a.warmup is not None else (1 if a.tiny else (10 if cuda else 2))
    op_warmup = a.warmup if a.warmup is not None else (1 if a.tiny else (10 if cuda else 3))
    reps = a.reps or (10 if cuda else 1)

    out = Out(a.json)
    info = {"bench": "info", "impl": "torch", "device": dev, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "tf32": a.tf32, "python": sys.executable}
    if cuda:
        info["gpu"] = torch.cuda.get_device_name()
        info["cudnn"] = torch.backends.cudnn.version()
    out.emit(info)
    print("torch %s on %s, %d threads, tf32 %s" % (torch.__version__, info.get("gpu", "cpu"),
                                                  torch.get_num_threads(), a.tf32), flush=True)

    if not a.skip_train:
        print("\nPyTorch train step (%d iters after %d warmup)" % (iters, warmup))
        print("%-12s %6s %11s %11s %10s %12s %14s %14s %10s" % (
            "impl", "batch", "ms/step", "min ms", "img/s", "s/epoch60k", "peak host MiB",
            "peak dev MiB", "loss"))
        for b in a.batch:
            for mode in (["eager"] if not cuda or a.no_graph else ["eager", "graph"]):
                bench_train(a, out, dev, b, mode, iters, warmup)
    if not a.skip_ops:
        bench_ops(a, out, Timer(dev, op_warmup, op_iters, reps), dev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
