#!/usr/bin/env python3
"""Writes the independently-made half of the fuzz seed corpus (tests/fuzz/corpus/<reader>/py-*):
inputs from encoders that are not ember's, so the seeds reach code ember's own writers never
exercise (dynamic-Huffman deflate blocks, gzip header fields, all five PNG scanline filters,
ancillary PNG chunks, safetensors files written by PyTorch with several dtypes).
tests/fuzz/make_corpus.cpp writes the ember-made half.

Usage: /usr/bin/python3 tests/fuzz/make_corpus.py [CORPUS_DIR]   (default tests/fuzz/corpus)
PyTorch + safetensors are needed only for the safetensors seeds (skipped without them).
"""
import gzip
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(root, reader, name, data):
    d = os.path.join(root, reader)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def text(n):
    words = ["alpha ", "beta ", "gamma ", "delta ", "\n", "epsilon ", "zeta "]
    out = "".join(words[(i * i + 3 * i) % len(words)] + str(i % 13) for i in range(n))
    return out.encode()[:n]


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width, height, filters, extra_chunks=b"", split_idat=False):
    """8-bit grayscale PNG with the given filter type per row (raw bytes filtered by hand)."""
    px = [[(x * 31 + y * 17 + x * y) % 256 for x in range(width)] for y in range(height)]
    raw = bytearray()
    for y in range(height):
        f = filters[y % len(filters)]
        raw.append(f)
        for x in range(width):
            a = px[y][x - 1] if x else 0
            b = px[y - 1][x] if y else 0
            c = px[y - 1][x - 1] if x and y else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            raw.append((px[y][x] - pred) % 256)
    z = zlib.compress(bytes(raw), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = png_chunk(b"IDAT", z) if not split_idat else \
        png_chunk(b"IDAT", z[:len(z) // 2]) + png_chunk(b"IDAT", z[len(z) // 2:])
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra_chunks + idat +
            png_chunk(b"IEND", b""))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    t = text(700)
    # ---- deflate: zlib (dynamic Huffman at level 9), gzip with every header field ----
    put(root, "deflate", "py-text9.zz", zlib.compress(t, 9))
    put(root, "deflate", "py-text1.zz", zlib.compress(t, 1))
    put(root, "deflate", "py-text0.zz", zlib.compress(t[:100], 0))  # a stored block
    put(root, "deflate", "py-text.gz", gzip.compress(t, 9, mtime=0))
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = body.compress(t[:200]) + body.flush()
    flg = 0x1F  # FTEXT FHCRC FEXTRA FNAME FCOMMENT
    hdr = bytes([0x1F, 0x8B, 8, flg]) + struct.pack("<I", 0) + bytes([2, 3])
    hdr += struct.pack("<H", 4) + b"ab\x01\x00" + b"name.txt\x00" + b"a comment\x00"
    hdr += struct.pack("<H", zlib.crc32(hdr) & 0xFFFF)
    member = hdr + deflated + struct.pack("<II", zlib.crc32(t[:200]), 200)
    put(root, "deflate", "py-fields-2members.gz", member + gzip.compress(t[200:260], 6, mtime=0))
    # ---- IDX: gzip-compressed by Python ----
    im = struct.pack(">IIII", 2051, 2, 3, 3) + bytes(range(18))
    put(root, "idx", "py-images.idx.gz", gzip.compress(im, 9, mtime=0))
    put(root, "idx", "py-labels.idx.gz", gzip.compress(struct.pack(">II", 2049, 2) + b"\x01\x09",
                                                      9, mtime=0))
    # ---- PNG: all five filters, ancillary chunks, split IDAT ----
    put(root, "png", "py-filters.png", png(9, 10, [0, 1, 2, 3, 4]))
    text_chunk = png_chunk(b"tEXt", b"Comment\x00fuzz seed")
    put(root, "png", "py-ancillary-split.png", png(5, 4, [4, 3], text_chunk, split_idat=True))
    put(root, "png", "py-1x1.png", png(1, 1, [2]))
    # ---- safetensors: PyTorch + safetensors ----
    try:
        import torch
        from safetensors.torch import save
    except ImportError:
        print("no torch/safetensors: safetensors seeds skipped")
    else:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, 1, 1), torch.nn.BatchNorm2d(2),
                                  torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 3))
        put(root, "safetensors", "py-model.safetensors",
            save({k: v.contiguous() for k, v in net.state_dict().items()}, {"format": "pt"}))
        put(root, "safetensors", "py-dtypes.safetensors", save({
            "h": torch.tensor([1.0, -2.0, float("inf")], dtype=torch.float16),
            "b": torch.tensor([[0.5, 3.0]], dtype=torch.bfloat16),
            "i": torch.tensor([1, -2], dtype=torch.int32),
            "u": torch.tensor([255, 0], dtype=torch.uint8),
            "t": torch.tensor([True, False]),
            "s": torch.tensor(2.5, dtype=torch.float64)}))
    print("wrote the Python-made seeds under", root)


if __name__ == "__main__":
    main()
