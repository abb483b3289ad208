#!/usr/bin/python3
"""Pillow oracle for the pixel paths (tests/media_pixels.test.ts, bench/resize.ts). Run with Debian's /usr/bin/python3.

  pillow_resize.py jobs DIR      DIR/jobs.json lists jobs; each reads raw RGB24 DIR/<input> and writes DIR/<output>:
      {"op": "resize", "input", "width", "height", "outWidth", "outHeight", "output"}
          Image.resize((outWidth, outHeight), Image.BICUBIC): raw RGB24.
      {"op": "vicuna" | "qwen", "input", "width", "height", "output", "normalized", "size"?}
          the frame path of spec §3.2 / §9: output = the uint8 S×S×3 image before normalisation, normalized = the
          float32 3×S×S tensor (S = size, default 336 / 384), computed the way transformers does (rescale in float64 then float32, normalise in
          float32).
  pillow_resize.py bench W H OW OH N
      times N BICUBIC resizes of random W×H RGB frames to OW×OH inside this process and prints {"seconds": total}.
"""
import json
import math
import sys
import time

import numpy as np
from PIL import Image

CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
SIGLIP_MEAN, SIGLIP_STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def load(path, width, height):
    data = np.fromfile(path, dtype=np.uint8)
    assert data.size == width * height * 3, (path, data.size, width, height)
    return Image.fromarray(data.reshape(height, width, 3), "RGB")


def letterbox(image, target):
    """LLaVA-NeXT resize_and_pad_image, with transformers' get_patch_output_size for the inner size."""
    width, height = image.size
    scale_w, scale_h = target / width, target / height
    if scale_w < scale_h:
        new_w, new_h = target, min(math.ceil(height * scale_w), target)
    else:
        new_w, new_h = min(math.ceil(width * scale_h), target), target
    canvas = Image.new("RGB", (target, target), (0, 0, 0))
    canvas.paste(image.resize((new_w, new_h), Image.BICUBIC), ((target - new_w) // 2, (target - new_h) // 2))
    return canvas


def normalize(image, mean, std):
    x = (np.asarray(image).astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def run_jobs(folder):
    with open(f"{folder}/jobs.json") as f:
        jobs = json.load(f)
    for job in jobs:
        image = load(f"{folder}/{job['input']}", job["width"], job["height"])
        if job["op"] == "resize":
            out = image.resize((job["outWidth"], job["outHeight"]), Image.BICUBIC)
        elif job["op"] == "vicuna":
            side = job.get("size", 336)
            out = image.resize((side, side), Image.BICUBIC)
            normalize(out, CLIP_MEAN, CLIP_STD).tofile(f"{folder}/{job['normalized']}")
        elif job["op"] == "qwen":
            out = letterbox(image, job.get("size", 384))
            normalize(out, SIGLIP_MEAN, SIGLIP_STD).tofile(f"{folder}/{job['normalized']}")
        else:
            raise ValueError(f"unknown op {job['op']}")
        np.asarray(out, dtype=np.uint8).tofile(f"{folder}/{job['output']}")


def bench(width, height, out_width, out_height, count):
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB") for _ in range(count)]
    frames[0].resize((out_width, out_height), Image.BICUBIC)  # warm-up
    start = time.perf_counter()
    for frame in frames:
        frame.resize((out_width, out_height), Image.BICUBIC)
    print(json.dumps({"seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    if sys.argv[1] == "jobs":
        run_jobs(sys.argv[2])
    elif sys.argv[1] == "bench":
        bench(*map(int, sys.argv[2:7]))
    else:
        sys.exit(__doc__)
