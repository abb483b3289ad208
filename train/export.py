"""Writes the shipped model folder and the bundled samples.

    /usr/bin/python3 train/export.py --ckpt RUN_DIR/dpo --data DIR [--model-dir models/ppllava-tiny] [--samples 6]

models/ppllava-tiny/: config.json, generation_config.json, model.safetensors (F16, the §6 key layout) copied from the
checkpoint; LLaMA tokenizer files (tokenizer.json = LLaMA-2's vocabulary + `<image>` 32000, tokenizer_config.json,
special_tokens_map.json, added_tokens.json); CLIP tokenizer files in clip_tokenizer/ (vocab.json, merges.txt,
tokenizer_config.json, special_tokens_map.json: openai/clip-vit-large-patch14-336's vocabulary); preprocessor_config.json
(84×84 stretch, CLIP mean/std). samples/: a few held-out videos as MJPEG AVI and GIF + samples/tiny_qa.json.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import model as M  # noqa: E402
import tokenizers as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)


def write_tokenizers(folder):
    llama = T.llama_tokenizer_json()
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(llama, f, ensure_ascii=False, separators=(",", ":"))
    added = {str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
             for t in llama["added_tokens"]}
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added, "bos_token": "<s>",
        "clean_up_tokenization_spaces": False, "eos_token": "</s>", "legacy": True, "model_max_length": 4096,
        "pad_token": "<unk>", "padding_side": "left", "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>"})
    write_json(os.path.join(folder, "special_tokens_map.json"),
               {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>"})
    write_json(os.path.join(folder, "added_tokens.json"), {"<image>": T.IMAGE_ID})
    clip_dir = os.path.join(folder, "clip_tokenizer")
    os.makedirs(clip_dir, exist_ok=True)
    vocab, merges = T.clip_vocab_and_merges()
    with open(os.path.join(clip_dir, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(clip_dir, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    write_json(os.path.join(clip_dir, "tokenizer_config.json"), {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": T.CLIP_LENGTH, "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer"})
    write_json(os.path.join(clip_dir, "special_tokens_map.json"), {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"})


def write_preprocessor(folder):
    write_json(os.path.join(folder, "preprocessor_config.json"), {
        "crop_size": {"height": D.SIZE, "width": D.SIZE}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": M.MEAN.tolist(),
        "image_std": M.STD.tolist(), "resample": 3, "rescale_factor": 1 / 255, "size": {"shortest_edge": D.SIZE},
        "image_processor_type": "LlavaNextImageProcessor", "num_frames": D.FRAMES})


def write_samples(data_dir, out_dir, count, results=None):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(data_dir, "test.jsonl")) as f:
        records = [json.loads(line) for line in f]
    picked = [r for r in records if r["small_scene"]][:2] + [r for r in records if not r["small_scene"]][:count - 2]
    entries = []
    for r in picked:
        for ext in ("avi", "gif"):
            shutil.copy(os.path.join(data_dir, "videos", "test", f"{r['id']}.{ext}"), os.path.join(out_dir, f"{r['id']}.{ext}"))
        entries.append({"id": r["id"], "files": [f"{r['id']}.avi", f"{r['id']}.gif"], "caption": r["caption"],
                        "frames_rendered": D.RENDER_FRAMES, "num_frames": D.FRAMES, "fps": D.FPS,
                        "questions": [{k: q[k] for k in ("type", "question", "mc_question", "options", "answer",
                                                         "rejected")} for q in r["qa"]]})
    write_json(os.path.join(out_dir, "tiny_qa.json"), {
        "about": "Held-out videos of train/data.py (split 'test', never trained on) for models/ppllava-tiny. Prompt: "
                 "'USER: <image>\\n{question or mc_question} ASSISTANT: ' (plain_v1), CLIP text = the same user text; "
                 "the answer is the text after the prompt up to EOS (for multiple choice: the right option's text).",
        "videos": entries})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models", "ppllava-tiny"))
    ap.add_argument("--samples-dir", default=os.path.join(ROOT, "samples", "tiny"))
    ap.add_argument("--samples", type=int, default=6)
    args = ap.parse_args()
    os.makedirs(args.model_dir, exist_ok=True)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(os.path.join(args.ckpt, name), os.path.join(args.model_dir, name))
    write_tokenizers(args.model_dir)
    write_preprocessor(args.model_dir)
    if os.path.isdir(os.path.join(args.data, "videos", "test")):
        write_samples(args.data, args.samples_dir, args.samples)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(args.model_dir) for f in fs)
    print(json.dumps({"model_dir": args.model_dir, "bytes": total}))


if __name__ == "__main__":
    main()
