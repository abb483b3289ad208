"""Seeded generator of short synthetic videos with captions, questions and answers (issue 4).

Each video has 16 rendered frames of 84×84 RGB (dark background, light noise) holding 1–3 objects: shapes square /
circle / triangle, colours red / green / blue / yellow / purple, sizes large (22 px) / small (9 px), each moving left /
right / up / down (1.8 px per rendered frame) or staying still, and appearing late or disappearing early. Within one
video colours and shapes are distinct, so "the red object" and "the triangle" name one object.

Scene "112" (PPLLaVA_SCENE=112, the train3 experiment): at 84 px (6×6 patches of 14 px) a 22 px shape lies under about
two patches and shape questions stayed at chance, and 1.8 px/frame moves an object about one pooling window over the
clip (direction at chance). 112 px gives 8×8 patches; a 32 px object spans about 2.3 patches, the small object keeps
the small/large ratio (12/32 ≈ 9/22), and an object travels about 42 px (1.5 pooling windows of 28 px) between the
first and last sampled frames. It did not help (train/logs/train3/): shape and direction stayed at chance.

Scene "84-fast" (an experiment on direction, results in the model card's limits): the shipped 84 px world with objects
moving 3.0 px per rendered frame, about 39 px (1.4 pooling windows) between the first and last sampled frame.

The model sees the 8 frames that spec §3.1's index formula picks from 16 (segment centres: 0,2,4,6,8,9,11,13):
the runtime sampling 8 frames from the written file gets exactly the frames training used.

Questions (type: text → answer), each as multiple choice (options listed, the answer is the option's text) and open:
  colour_of_shape  "What colour is the triangle?" → "red"
  shape_of_colour  "What shape is the blue object?" → "circle"
  direction        "Which way does the red square move?" → "left" | "right" | "up" | "down" | "still"
  colour_moving    "What colour is the object moving left?" → "green"
  count            "How many objects are in the video?" → "one" | "two" | "three"
  appear           "What colour is the object that appears?" → colour
  disappear        "What colour is the object that disappears?" → colour
  small_object     "What colour is the small square?" → colour (scenes with one small object among large ones:
                   the PGP-vs-average-pooling ablation)
  describe         "Describe the video." → the caption (open only)
Rejected answers (DPO) are plausible but wrong: another option of the same question, preferring the colour/shape of a
distractor object that is in the video; for count, another count drawn so that the rejected answers are mixed as the
right ones are (count_rejected: else DPO learns a prior over the count words, not the video).

Images and multi-image samples for interleave training are cut from the same scenes: one frame (image), or two
frames as two images ("the first image" / "the second image").

CLI: python3 train/data.py OUT [--train N --val N --test N --videos]  writes OUT/{split}.npz (uint8 frames
(N,8,SIZE,SIZE,3)) + OUT/{split}.jsonl (one record per video: objects, caption, qa) and, with --videos, MP4 (H.264),
MJPEG AVI and GIF files of the 16 frames under OUT/videos/{split}/.
"""
import argparse
import json
import os
import subprocess

import numpy as np

# The scene (env PPLLAVA_SCENE, set by train/run_all.sh's SCENE): frame side, large / small object size, speed in px
# per rendered frame. "84" is the shipped model's; "112" and "84-fast" experiments (see above).
SCENES = {"84": (84, 22, 9, 1.8), "84-fast": (84, 22, 9, 3.0), "112": (112, 32, 12, 3.2)}
SCENE = os.environ.get("PPLLAVA_SCENE", "84")
if SCENE not in SCENES:
    raise SystemExit(f"PPLLAVA_SCENE={SCENE!r}: allowed {sorted(SCENES)}")
SIZE, LARGE, SMALL, SPEED = SCENES[SCENE]
RENDER_FRAMES = 16
FRAMES = 8
FPS = 8
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 235), "yellow": (235, 215, 40),
           "purple": (165, 60, 210)}
SHAPES = ["square", "circle", "triangle"]
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "still": (0, 0)}
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
QTYPES = ["colour_of_shape", "shape_of_colour", "direction", "colour_moving", "count", "appear", "disappear",
          "small_object"]


def sample_indices(length, n):
    """Spec §3.1: seg = (L-1)/n; index_i = int(seg/2 + round_half_even(seg·i))."""
    seg = (length - 1) / n
    return [int(seg / 2 + np.round(seg * i)) for i in range(n)]


SAMPLED = sample_indices(RENDER_FRAMES, FRAMES)


def make_scene(rng, small_scene=False):
    """→ list of object dicts: colour, shape, size, direction, start (x, y), visible (first, last rendered frame)."""
    n = int(rng.integers(2, 4)) if small_scene else int(rng.choice([1, 2, 2, 3, 3]))
    colours = list(rng.choice(list(COLOURS), n, replace=False))
    shapes = list(rng.choice(SHAPES, n, replace=False))
    small_at = int(rng.integers(n)) if small_scene else -1
    objects = []
    event_used = False
    for k in range(n):
        size = SMALL if k == small_at else (LARGE if small_scene or rng.random() < 0.75 else SMALL)
        direction = str(rng.choice(list(DIRECTIONS), p=[0.2, 0.2, 0.2, 0.2, 0.2]))
        dx, dy = DIRECTIONS[direction]
        travel = SPEED * (RENDER_FRAMES - 1)
        lo, hi = size / 2 + 1, SIZE - size / 2 - 1
        x = rng.uniform(lo - min(dx, 0) * travel, hi - max(dx, 0) * travel)
        y = rng.uniform(lo - min(dy, 0) * travel, hi - max(dy, 0) * travel)
        first, last = 0, RENDER_FRAMES - 1
        if not small_scene and not event_used and n > 1 and rng.random() < 0.5:
            event_used = True
            if rng.random() < 0.5:
                first = int(rng.integers(5, 10))  # appears
            else:
                last = int(rng.integers(6, 11))  # disappears
        objects.append(dict(colour=str(colours[k]), shape=str(shapes[k]), size="small" if size == SMALL else "large",
                            pixels=size, direction=direction, x=float(x), y=float(y), first=first, last=last))
    return objects


def position(obj, f):
    dx, dy = DIRECTIONS[obj["direction"]]
    return obj["x"] + dx * SPEED * f, obj["y"] + dy * SPEED * f


def render(objects, rng):
    """→ (RENDER_FRAMES, SIZE, SIZE, 3) uint8."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    base = np.full((SIZE, SIZE, 3), 28.0) + rng.normal(0, 3.0, (SIZE, SIZE, 3))
    frames = []
    for f in range(RENDER_FRAMES):
        img = base.copy()
        for obj in objects:
            if not obj["first"] <= f <= obj["last"]:
                continue
            cx, cy = position(obj, f)
            r = obj["pixels"] / 2
            if obj["shape"] == "square":
                mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
            elif obj["shape"] == "circle":
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            else:  # triangle pointing up
                top = cy - r
                mask = (yy >= top) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - top) / 2)
            img[mask] = COLOURS[obj["colour"]]
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


EVENTS = ["none", "appears", "disappears"]


def event(obj):
    """→ "appears" (enters after the first rendered frame), "disappears" (leaves before the last) or "none"."""
    return "appears" if obj["first"] > 0 else "disappears" if obj["last"] < RENDER_FRAMES - 1 else "none"


def caption(objects):
    parts = []
    for o in objects:
        what = f"a {'small ' if o['size'] == 'small' else ''}{o['colour']} {o['shape']}"
        verb = "stays still" if o["direction"] == "still" else f"moves {o['direction']}"
        parts.append(f"{what} {verb}{'' if event(o) == 'none' else ' and ' + event(o)}")
    return ". ".join(parts) + "."


def options_for(rng, answer, pool, k=4):
    others = [x for x in pool if x != answer]
    chosen = list(rng.choice(others, min(k - 1, len(others)), replace=False)) + [answer]
    rng.shuffle(chosen)
    return [str(c) for c in chosen]


def questions(objects, rng, small_scene):
    """→ list of dicts: type, question, answer, pool (possible answers), distractor (plausible wrong answer)."""
    qs = []
    colours = [o["colour"] for o in objects]
    shapes = [o["shape"] for o in objects]

    def wrong(answer, pool, preferred):
        prefs = [p for p in preferred if p != answer]
        return prefs[int(rng.integers(len(prefs)))] if prefs else str(rng.choice([p for p in pool if p != answer]))

    if small_scene:
        o = next(o for o in objects if o["size"] == "small")
        qs.append(dict(type="small_object", question=f"What colour is the small {o['shape']}?", answer=o["colour"],
                       pool=list(COLOURS), distractor=wrong(o["colour"], list(COLOURS), colours)))
        return qs
    o = objects[int(rng.integers(len(objects)))]
    qs.append(dict(type="colour_of_shape", question=f"What colour is the {o['shape']}?", answer=o["colour"],
                   pool=list(COLOURS), distractor=wrong(o["colour"], list(COLOURS), colours)))
    o = objects[int(rng.integers(len(objects)))]
    qs.append(dict(type="shape_of_colour", question=f"What shape is the {o['colour']} object?", answer=o["shape"],
                   pool=SHAPES, distractor=wrong(o["shape"], SHAPES, shapes)))
    o = objects[int(rng.integers(len(objects)))]
    dirs = list(DIRECTIONS)
    qs.append(dict(type="direction", question=f"Which way does the {o['colour']} {o['shape']} move?",
                   answer=o["direction"], pool=dirs,
                   distractor=wrong(o["direction"], dirs, [p["direction"] for p in objects])))
    moving = {}
    for p in objects:
        moving.setdefault(p["direction"], []).append(p)
    unique = [d for d, ps in moving.items() if len(ps) == 1 and d != "still"]
    if unique:
        d = unique[int(rng.integers(len(unique)))]
        qs.append(dict(type="colour_moving", question=f"What colour is the object moving {d}?",
                       answer=moving[d][0]["colour"], pool=list(COLOURS),
                       distractor=wrong(moving[d][0]["colour"], list(COLOURS), colours)))
    n = len(objects)
    counts = list(COUNT_WORDS.values())
    qs.append(dict(type="count", question="How many objects are in the video?", answer=COUNT_WORDS[n], pool=counts,
                   distractor=COUNT_WORDS[n + 1 if n < 3 else n - 1]))
    for kind, verb in (("appear", "appears"), ("disappear", "disappears")):
        hits = [p for p in objects if event(p) == verb]
        if len(hits) == 1:
            qs.append(dict(type=kind, question=f"What colour is the object that {verb}?", answer=hits[0]["colour"],
                           pool=list(COLOURS), distractor=wrong(hits[0]["colour"], list(COLOURS), colours)))
    return qs


def finish(q, rng):
    """Adds the MC form: options (4 at most, the answer among them), mc_question; and the DPO rejected answer."""
    q["options"] = options_for(rng, q["answer"], q["pool"])
    if q["distractor"] not in q["options"]:
        q["options"][[i for i, o in enumerate(q["options"]) if o != q["answer"]][0]] = q["distractor"]
    letters = "ABCD"
    q["mc_question"] = q["question"] + " Options: " + " ".join(
        f"({letters[i]}) {o}." for i, o in enumerate(q["options"]))
    q["rejected"] = q["distractor"]
    del q["pool"]
    return q


def count_rejected(answer, rng):
    """Count's DPO rejected answer, drawn so that the rejected answers are mixed as the right ones are: one 1/5, two
    2/5, three 2/5 (make_scene's counts outside small scenes, which ask no count). Its distractor (n + 1; "two" for
    three) made "two" the rejected answer of 59% of the count pairs and "one" of none, so DPO lowered its loss by
    saying "two" less and "one" more whatever the video showed (validation count MC 96.0% -> 92.7%, test 93.4% ->
    91.3%). one -> two or three alike; two -> three 3 times in 4, else one; three -> two 3 times in 4, else one.
    Every other type's rejected answer (another object's colour, shape or direction) is already mixed as its answers."""
    if answer == "one":
        return ("two", "three")[int(rng.integers(2))]
    return ("three" if answer == "two" else "two") if rng.random() < 0.75 else "one"


def make_video(seed, index):
    rng = np.random.default_rng([seed, index])
    small_scene = rng.random() < 0.25
    objects = make_scene(rng, small_scene)
    frames = render(objects, rng)
    qa = [finish(q, rng) for q in questions(objects, rng, small_scene)]
    # drawn apart from the scene's generator: frames, questions and options stay as they were before it
    rejected_rng = np.random.default_rng([seed, index, 1])
    for q in qa:
        if q["type"] == "count":
            q["rejected"] = count_rejected(q["answer"], rejected_rng)
    record = dict(id=f"v{seed}_{index:05d}", objects=objects, caption=caption(objects), qa=qa,
                  small_scene=bool(small_scene))
    return frames, record


SPLIT_SEEDS = {"train": 1001, "val": 2002, "test": 3003}


def make_split(split, count):
    """→ (frames (count, FRAMES, S, S, 3) uint8 at the sampled indices, full 16-frame renders, records)."""
    sampled, full, records = [], [], []
    for i in range(count):
        frames, record = make_video(SPLIT_SEEDS[split], i)
        full.append(frames)
        sampled.append(frames[SAMPLED])
        records.append(record)
    return np.stack(sampled), np.stack(full), records


def write_videos(frames, path_stem):
    """16 frames → .mp4 (H.264, yuv420p), .avi (MJPEG, q 2) and .gif through the ffmpeg CLI."""
    raw = frames.tobytes()
    inp = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE}x{SIZE}",
           "-r", str(FPS), "-i", "-"]
    outs = [["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", path_stem + ".mp4"],
            ["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj444p", path_stem + ".avi"],
            ["-filter_complex", "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse=dither=none",
             path_stem + ".gif"]]
    for out in outs:
        subprocess.run(inp + out, input=raw, check=True)


def decode_video(path, n=FRAMES):
    """Decode a written file back to RGB frames with ffmpeg, then pick n with the §3.1 formula (what the runtime does)."""
    out = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(out, dtype=np.uint8).reshape(-1, SIZE, SIZE, 3)
    return frames[sample_indices(len(frames), n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--videos", action="store_true", help="write MP4/AVI/GIF files of val and test")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for split in ("train", "val", "test"):
        if getattr(args, split) == 0:  # e.g. --train 0 --val 0 --test 2000: a larger held-out set alone
            continue
        frames, full, records = make_split(split, getattr(args, split))
        np.savez_compressed(os.path.join(args.out, f"{split}.npz"), frames=frames)
        with open(os.path.join(args.out, f"{split}.jsonl"), "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        if args.videos and split != "train":
            folder = os.path.join(args.out, "videos", split)
            os.makedirs(folder, exist_ok=True)
            for clip, record in zip(full, records):
                write_videos(clip, os.path.join(folder, record["id"]))
        print(split, len(records), "videos", sum(len(r["qa"]) for r in records), "questions")


if __name__ == "__main__":
    main()
