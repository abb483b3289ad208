"""Held-out evaluation in PyTorch (float32, the batched forward that check_model.py ties to the reference).

For each checkpoint folder: greedy answers to every test question (multiple choice: the answer must equal the right
option's text; open: exact match), per question type; the small-object questions again with plain average pooling
at the same token budget (PGP ablation); the rate of rejected-style errors (greedy answer == the DPO rejected answer)
on multiple-choice questions. Frames come from the MJPEG AVI files the runtime will read (decoded by ffmpeg and
sampled with the §3.1 formula) when --from-video is given, else from the uint8 arrays.

    /usr/bin/python3 train/evaluate.py --data DIR --out RESULT.json [--from-video] NAME=CHECKPOINT_DIR ...
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--from-video", action="store_true")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=0, help="videos (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frames, records = S.load_split(args.data, args.split)
    if args.limit:
        frames, records = frames[:args.limit], records[:args.limit]
    source = "uint8 arrays"
    if args.from_video:
        folder = os.path.join(args.data, "videos", args.split)
        frames = np.stack([D.decode_video(os.path.join(folder, r["id"] + ".avi")) for r in records])
        source = "MJPEG AVI decoded by ffmpeg"
    tok = S.Tokenizers()
    small = [r for r in records if r["small_scene"]]
    small_idx = [i for i, r in enumerate(records) if r["small_scene"]]
    report = {"split": args.split, "videos": len(records), "frames_from": source, "models": {}}
    for spec in args.models:
        name, folder = spec.split("=", 1)
        net = M.TinyPPLLaVA.load(folder)
        res = E.evaluate(net, tok, frames, records)
        entry = E.summarize(res["pgp"])
        entry["examples"] = res["pgp"]["examples"]
        ablation = E.evaluate(net, tok, frames[small_idx], small, modes=("pgp", "avg"))
        entry["small_object_mc"] = {m: E.summarize(ablation[m])["mc_accuracy"] for m in ("pgp", "avg")}
        entry["small_object_open"] = {m: E.summarize(ablation[m])["open_accuracy"] for m in ("pgp", "avg")}
        entry["n_small_mc"] = E.summarize(ablation["pgp"])["n_mc"]
        entry["pgp_minus_avg_mc"] = round(entry["small_object_mc"]["pgp"] - entry["small_object_mc"]["avg"], 4)
        report["models"][name] = entry
        print(json.dumps({name: {k: v for k, v in entry.items() if k != "examples"}}), flush=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
