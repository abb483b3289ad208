#!/usr/bin/python3
"""SentencePiece itself (Debian's python3-sentencepiece, the C++ library) as the oracle for the LLaMA tokenizer.

  build-from-json TOKENIZER_JSON OUT_MODEL [tied]   write a tokenizer.model (ModelProto via the official pb2)
      holding the LLaMA-2 vocabulary of an HF tokenizer.json. tokenizer.json has no scores, so a merged piece gets
      -(rank of the first merge that makes it) and every other piece a lower score; with these scores SentencePiece's
      score-ordered BPE and HF's rank-ordered BPE agree. With "tied", the pieces made only of "▁" all get -1e9
      instead, as in LLaMA's own file (LLaMA's tokenizer.json lists their merges last, in id order: the stable sort
      of equal scores), which is where SentencePiece (leftmost first) and HF (rank first) can differ.
      Normalizer as LLaMA's: identity, dummy prefix, no squeezing.
  train CORPUS OUT_PREFIX                    train a small real BPE model (byte fallback, a user-defined symbol).
  encode MODEL TEXTS_JSON                    print the ids sp.encode gives for each text (no BOS), as JSON.
"""
import json
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb


def build_from_json(json_path, out_path, tied=""):
    with open(json_path, encoding="utf-8") as f:
        model = json.load(f)["model"]
    vocab = model["vocab"]
    first_rank = {}
    for rank, merge in enumerate(model["merges"]):
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        first_rank.setdefault(left + right, rank)
    proto = pb.ModelProto()
    for piece, pid in sorted(vocab.items(), key=lambda kv: kv[1]):
        p = proto.pieces.add()
        p.piece = piece
        if pid == 0:
            p.type, p.score = pb.ModelProto.SentencePiece.UNKNOWN, 0.0
        elif pid in (1, 2):
            p.type, p.score = pb.ModelProto.SentencePiece.CONTROL, 0.0
        elif piece.startswith("<0x") and len(piece) == 6:
            p.type, p.score = pb.ModelProto.SentencePiece.BYTE, 0.0
        else:
            p.type = pb.ModelProto.SentencePiece.NORMAL
            p.score = -float(first_rank.get(piece, len(model["merges"]) + pid))
            if tied == "tied" and len(piece) > 1 and set(piece) == {"\u2581"}:
                p.score = -1e9
    t = proto.trainer_spec
    t.model_type = pb.TrainerSpec.BPE
    t.vocab_size = len(vocab)
    t.byte_fallback = True
    t.unk_id, t.bos_id, t.eos_id, t.pad_id = 0, 1, 2, -1
    n = proto.normalizer_spec
    n.name = "identity"
    n.add_dummy_prefix = True
    n.remove_extra_whitespaces = False
    n.escape_whitespaces = True
    with open(out_path, "wb") as f:
        f.write(proto.SerializeToString())


def train(corpus, prefix):
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=1000, byte_fallback=True,
        user_defined_symbols=["<image>"], character_coverage=0.98, remove_extra_whitespaces=False,
        normalization_rule_name="identity", hard_vocab_limit=False, minloglevel=2, num_threads=1)


def encode(model_path, texts_path):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    json.dump([sp.encode(t) for t in texts], sys.stdout)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"build-from-json": build_from_json, "train": train, "encode": encode}[command](*args)
