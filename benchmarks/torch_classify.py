#!/usr/bin/env python3
"""PyTorch reference for fashion-classify (examples/fashion_classify): the same CNN and recipe.

Model (include/ember/models/classifier.hpp, same module names and PyTorch's default init):
  features:   Conv(1,32,3,p1) BN ReLU MaxPool2 -> Conv(32,64,3,p1) BN ReLU MaxPool2
  classifier: Flatten Dropout(p) Linear(64*(s/4)^2,128) ReLU Dropout(p) Linear(128,10)
Data: FashionMNIST uint8 -> /255 -> (for --size 16: antialiased bilinear resize 28->16,
align_corners=False) -> x*2-1. No augmentation. Each epoch a seeded reshuffle; the last partial
batch is dropped. Loss: cross_entropy. AdamW(lr, weight_decay), betas (0.9, 0.999), with a
CosineAnnealingLR stepped after every batch (T_max = all steps, eta_min 0). Test accuracy after
every epoch (eval mode, batches of 1000).

  /usr/bin/python3 benchmarks/torch_classify.py --size 28|16 [--epochs N] [--batch N] [--lr X]
      [--weight-decay X] [--dropout P] [--seed N] [--threads N] [--data DIR] [--limit N]
      [--json FILE]
  /usr/bin/python3 benchmarks/torch_classify.py --eval-safetensors MODEL.safetensors

--eval-safetensors loads fashion-classify's model.safetensors (ember's weights, PyTorch's names;
its size from the file's metadata) into this PyTorch model and prints its test accuracy, to set
beside the figure ember printed for the same weights (parsed by hand: no safetensors package).

Prints one line per epoch and a final JSON object (also written to --json): test accuracy,
per-epoch loss/accuracy, parameter count, wall time. Runs with PyTorch 1.13 and 2.x.
"""
import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_model(size, dropout):
    L = size // 4
    m = nn.Module()
    m.features = nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
    m.classifier = nn.Sequential(
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * L * L, 128), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(128, 10))
    return m


def forward(m, x):
    return m.classifier(m.features(x))


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return torch.frombuffer(bytearray(raw[16:16 + n * rows * cols]),
                                dtype=torch.uint8).reshape(n, 1, rows, cols)
    if magic == 2049:
        return torch.frombuffer(bytearray(raw[8:8 + n]), dtype=torch.uint8)
    sys.exit(f"{path}: bad IDX magic {magic}")


def find(d, base):
    for name in (base + ".gz", base):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit(f"FashionMNIST not found: no {os.path.join(d, base)}.gz")


def prepare(images, size):
    x = images.float() / 255.0
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x * 2 - 1


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            sys.exit(f"{path}: {name} has dtype {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(raw[base + a:base + b]),
                                         dtype=torch.float32).reshape(info["shape"])
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=28, choices=[28, 16])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--dropout", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--data", default=os.environ.get("EMBER_DATA") or
                    "/usr/share/datasets/fashion-mnist")
    ap.add_argument("--json", default="")
    ap.add_argument("--eval-safetensors", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    if a.eval_safetensors:
        tensors, meta = read_safetensors(a.eval_safetensors)
        size = int(meta["img_size"])
        model = make_model(size, 0.0)
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            sys.exit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
        model.eval()
        x = prepare(read_idx(find(a.data, "t10k-images-idx3-ubyte")), size)
        y = read_idx(find(a.data, "t10k-labels-idx1-ubyte")).long()
        with torch.no_grad():
            pred = torch.cat([forward(model, x[i:i + 1000]).argmax(1)
                              for i in range(0, x.shape[0], 1000)])
        acc = (pred == y).float().mean().item()
        print(f"PyTorch {torch.__version__} with ember's weights ({a.eval_safetensors}, "
              f"{size}x{size}): test accuracy {acc * 100:.2f}% on {x.shape[0]} images; "
              f"ember's own figure in the file: {float(meta['test_accuracy']) * 100:.2f}%")
        return

    t_start = time.time()
    xtr = prepare(read_idx(find(a.data, "train-images-idx3-ubyte")), a.size)
    ytr = read_idx(find(a.data, "train-labels-idx1-ubyte")).long()
    xte = prepare(read_idx(find(a.data, "t10k-images-idx3-ubyte")), a.size)
    yte = read_idx(find(a.data, "t10k-labels-idx1-ubyte")).long()
    if a.limit > 0:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]

    model = make_model(a.size, a.dropout)
    nparams = sum(p.numel() for p in model.parameters())
    spe = xtr.shape[0] // a.batch
    total = spe * a.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    print(f"torch_classify: size {a.size}, {nparams} parameters, {a.epochs} epochs x {spe} steps, "
          f"batch {a.batch}, lr {a.lr}, wd {a.weight_decay}, dropout {a.dropout}, "
          f"torch {torch.__version__}, {a.threads} threads", flush=True)

    def evaluate():
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, xte.shape[0], 1000):
                correct += (forward(model, xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
        model.train()
        return correct / xte.shape[0]

    epochs = []
    t_train = 0.0
    g = torch.Generator().manual_seed(a.seed + 1)
    for e in range(a.epochs):
        t0 = time.time()
        perm = torch.randperm(xtr.shape[0], generator=g)
        model.train()
        loss_sum = 0.0
        for b in range(spe):
            idx = perm[b * a.batch:(b + 1) * a.batch]
            loss = F.cross_entropy(forward(model, xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
        dt = time.time() - t0
        t_train += dt
        acc = evaluate()
        epochs.append({"epoch": e + 1, "train_loss": loss_sum / spe, "test_accuracy": acc,
                       "train_s": dt})
        print(f"epoch {e + 1}: train loss {loss_sum / spe:.4f}, test accuracy {acc * 100:.2f}%, "
              f"{dt:.1f} s", flush=True)

    res = {"script": "benchmarks/torch_classify.py", "size": a.size, "epochs": a.epochs,
           "batch": a.batch, "lr": a.lr, "weight_decay": a.weight_decay, "dropout": a.dropout,
           "seed": a.seed, "threads": a.threads, "limit": a.limit, "parameters": nparams,
           "test_accuracy": epochs[-1]["test_accuracy"] if epochs else None,
           "train_s": t_train, "total_s": time.time() - t_start, "torch": torch.__version__,
           "machine": platform.processor() or platform.machine(),
           "command": " ".join(["benchmarks/torch_classify.py"] + sys.argv[1:]),
           "epoch_log": epochs}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
