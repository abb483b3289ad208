"""Usage: /usr/bin/python3 train/probe_tokens.py CHECKPOINT_DIR DATA_DIR

Linear probes on what the LLM sees (PGP-pooled visual tokens, after the projector) for one-object videos:
is shape / colour / direction decodable? Train on train-split videos, test on val."""
import sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch, numpy as np
import engine as E, model as M, samples as S
torch.set_num_threads(1)
ckpt, data = sys.argv[1], sys.argv[2]
net = M.TinyPPLLaVA.load(ckpt); net.eval()
tok = S.Tokenizers(); cache = E.TextCache(net, tok)
def feats(split, limit):
    fr, rec = S.load_split(data, split)
    idx = [i for i, r in enumerate(rec) if len(r["objects"]) == 1][:limit]
    X = []
    with torch.no_grad():
        for s in range(0, len(idx), 32):
            ch = idx[s:s + 32]
            v = E.visual_tokens(net, "video", fr[ch], cache(["What shape is the object?"] * len(ch)))
            X.append(v.reshape(len(ch), -1))
    X = torch.cat(X)
    o = [rec[i]["objects"][0] for i in idx]
    return X, {k: [x[k] for x in o] for k in ("shape", "colour", "direction")}
Xtr, ytr = feats("train", 800); Xva, yva = feats("val", 200)
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-5
Xtr, Xva = (Xtr - mu) / sd, (Xva - mu) / sd
for k in ("shape", "colour", "direction"):
    labels = sorted(set(ytr[k])); a = torch.tensor([labels.index(x) for x in ytr[k]]); b = torch.tensor([labels.index(x) for x in yva[k]])
    W = torch.zeros(Xtr.shape[1], len(labels), requires_grad=True)
    opt = torch.optim.Adam([W], lr=1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(Xtr @ W, a) + 1e-3 * (W ** 2).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    print(k, "probe train %.2f val %.2f (n=%d, chance %.2f)" % (((Xtr @ W).argmax(1) == a).float().mean(), ((Xva @ W).argmax(1) == b).float().mean(), len(b), 1 / len(labels)))
