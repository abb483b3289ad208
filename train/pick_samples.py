"""Writes models/ppllava-tiny/samples.json (the README main job's sample and tests/embedded_model.test.ts's cases) from
the bundled held-out videos of samples/tiny/ (train/export.py copies them from the test split).

    /usr/bin/python3 train/pick_samples.py [--model-dir models/ppllava-tiny] [--samples-dir samples/tiny]

Rule: walk the bundled videos in tiny_qa.json order and their open questions in order, preferring the types in
PREFERRED order; decode the bundled file with ffmpeg (what the runtime reads, §3.1 sampling) and answer greedily
with the shipped weights (PyTorch). The first AVI question the model answers right becomes sample 0 (`ppllava ask`'s
default), the first GIF question of another type that it answers right sample 1. The samples show a working answer;
they are selected for it and are no score (the scores are `ppllava eval` on the whole test split).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Types the tiny models answer reliably first (`ppllava eval`: count / appear / disappear ≥ 80%), so a bundled sample
# is not a lucky guess at a type near chance (direction, shape_of_colour).
PREFERRED = ["count", "appear", "disappear", "small_object", "colour_moving", "colour_of_shape", "shape_of_colour",
             "direction"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models", "ppllava-tiny"))
    ap.add_argument("--samples-dir", default=os.path.join(ROOT, "samples", "tiny"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = M.TinyPPLLaVA.load(args.model_dir)
    net.eval()
    tok = S.Tokenizers()
    cache = E.TextCache(net, tok)
    with open(os.path.join(args.samples_dir, "tiny_qa.json")) as f:
        videos = json.load(f)["videos"]
    right = {}  # (ext, qtype) → first sample answered right
    for ext in ("avi", "gif"):
        for v in videos:
            frames = D.decode_video(os.path.join(args.samples_dir, f"{v['id']}.{ext}"))
            qs = [q for q in v["questions"] if q["type"] in PREFERRED]
            got = E.greedy_answers(net, tok, cache, frames[None].repeat(len(qs), axis=0),
                                   [q["question"] for q in qs])
            for q, g in zip(qs, got):
                if g == q["answer"] and (ext, q["type"]) not in right:
                    rel = os.path.relpath(os.path.join(args.samples_dir, f"{v['id']}.{ext}"), args.model_dir)
                    right[(ext, q["type"])] = {"video": rel, "question": q["question"], "answer": q["answer"]}
    first = next((right[("avi", t)], t) for t in PREFERRED if ("avi", t) in right)
    second = next(right[("gif", t)] for t in PREFERRED if ("gif", t) in right and t != first[1])
    with open(os.path.join(args.model_dir, "samples.json"), "w") as f:
        json.dump([first[0], second], f, indent=2)
        f.write("\n")
    print(json.dumps([first[0], second]))


if __name__ == "__main__":
    main()
