"""Usage: /usr/bin/python3 train/probe_relevance.py CHECKPOINT DATA_DIR

Does PGP's relevance map (spec §3.4 step B: softmax over a video's T·P patches of 100·cos) point at the object a
phrase names? On val videos with 2–3 objects (no small-object scenes), for a random object named by one attribute
("the red object", "the square", "the object moving left"): the share of the relevance mass on all objects that
falls on the named one. Chance (spreading over the objects) = the mean of 1 / objects, printed first. Objects are
found by their colour (unique within a video), as stage 1's grounding loss finds them. CHECKPOINT: an HF folder or a
stage*.pt of train/."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402
import stage1_align as A  # noqa: E402
from probe_tokens import load  # noqa: E402

PHRASES = {"colour": lambda o: f"the {o['colour']} object", "shape": lambda o: f"the {o['shape']}",
           "direction": lambda o: f"the object {A.motion(o['direction'])}"}


def main():
    ckpt, data = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    net = load(ckpt)
    net.eval()
    cache = E.TextCache(net, S.Tokenizers())
    frames, records = S.load_split(data, "val")
    rng = np.random.default_rng(0)
    idx = [i for i, r in enumerate(records) if len(r["objects"]) >= 2 and not r.get("small_scene")][:96]
    share = {k: [] for k in PHRASES}
    with torch.no_grad():
        feature = net.vision(M.pixels_from_uint8(frames[idx].reshape(-1, *frames.shape[2:])), len(idx))
        named = [records[i]["objects"][int(rng.integers(len(records[i]["objects"])))] for i in idx]
        for kind, make in PHRASES.items():
            _, p = net.pgp(feature, cache([make(o) for o in named]), len(idx))
            for n, (i, o) in enumerate(zip(idx, named)):
                objects = records[i]["objects"]
                if sum(x[kind] == o[kind] for x in objects) > 1:  # the phrase must name one object
                    continue
                mine = torch.from_numpy(A.object_patches(frames[i], objects, {"colour": o["colour"]}))
                every = torch.from_numpy(A.object_patches(frames[i], objects, {}))
                mass = p[n].reshape(-1)
                share[kind].append(((mass * mine).sum() / (mass * every).sum().clamp(min=1e-9)).item())
    chance = np.mean([1 / len(records[i]["objects"]) for i in idx])
    print(f"chance {chance:.2f} · " + " · ".join(f"{k} {np.mean(v):.2f} (n={len(v)})" for k, v in share.items()))


if __name__ == "__main__":
    main()
