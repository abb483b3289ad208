/**
 * Training smoke test (issue 4): a few steps of each stage of train/ on a tiny generated sample, then the saved
 * DPO checkpoint is run by the float64 reference forward (tests/oracles/ppllava_reference.py) and by the training
 * forward, which must agree (train/check_model.py); every logged loss must be finite and stage 2's loss must fall.
 */
import { assert, assertEquals } from "./util/assert.ts";

const PY = "/usr/bin/python3";

async function py(args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(PY, { args, stdout: "piped", stderr: "piped", env }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success, `${args.join(" ")} failed:\n${text}`);
  return text;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function losses(jsonl: string, key: string): number[] {
  return jsonl.trim().split("\n").map((line) => JSON.parse(line)).filter((row) => key in row).map((row) => row[key]);
}

/** Compares stage2.pt with stage1.pt of a folder: how many base-CLIP-vision / BT-Adapter / LLM tensors changed. */
const FROZEN_CHECK = `
import sys, json, torch
sys.path.insert(0, "train")
import model as M
a = torch.load(sys.argv[1] + "/stage1.pt")["weights"]; b = torch.load(sys.argv[1] + "/stage2.pt")["weights"]
out = {"clip": 0, "clip_changed": 0, "bt_changed": 0, "llm_changed": 0}
for k in a:
    moved = int(not torch.equal(a[k], b[k]))
    if k.startswith(M.ref.VT) and ".btadapter" not in k:
        out["clip"] += 1; out["clip_changed"] += moved
    elif ".btadapter" in k:
        out["bt_changed"] += moved
    elif k.startswith(M.ref.LM):
        out["llm_changed"] += moved
print(json.dumps(out))
`;

/** Compares two checkpoints' weights (argv 1 and 2) by key group: the CLIP text tower and text_projection, the frozen
 * first position table, everything else (stage 1b may move only the first group; SFT, after it, never that group). */
const TEXT_ONLY_CHECK = `
import sys, json, torch
sys.path.insert(0, "train")
import model as M
a = torch.load(sys.argv[1])["weights"]; b = torch.load(sys.argv[2])["weights"]
out = {"text_changed": 0, "other_changed": 0, "frozen_positions_changed": 0}
for k in a:
    moved = int(not torch.equal(a[k], b[k]))
    if k.endswith(".embeddings.position_embedding"):
        out["frozen_positions_changed"] += moved
    elif k.startswith(M.ref.TT) or ".clip_text_projection" in k:
        out["text_changed"] += moved
    else:
        out["other_changed"] += moved
print(json.dumps(out))
`;

/** train/stage1_align.py's object_patches against the generator's geometry: every patch it marks for an object lies
 * within (or touches) that object's box at that frame, and the patch under the box centre is marked. */
const PATCHES_CHECK = `
import sys, json, numpy as np
sys.path.insert(0, "train")
import data as D, samples as S, stage1_align as A
frames, records = S.load_split(sys.argv[1], "train")
checked = bad = 0
for f, r in zip(frames, records):
    for o in r["objects"]:
        mask = A.object_patches(f, r["objects"], {"colour": o["colour"]}).reshape(len(f), 6, 6)
        for t, idx in enumerate(D.SAMPLED):
            if not (o["first"] <= idx <= o["last"]):
                bad += int(mask[t].any()); continue
            x, y = D.position(o, idx); h = o["pixels"] / 2
            lo, hi = int((x - h) // 14), int((x + h) // 14)
            top, bottom = int((y - h) // 14), int((y + h) // 14)
            ys, xs = np.nonzero(mask[t])
            bad += int(((xs < lo) | (xs > hi) | (ys < top) | (ys > bottom)).any())
            others = [p for p in r["objects"] if p is not o and p["first"] <= idx <= p["last"]]
            if o["size"] == "large" and not others:  # unoccluded: its centre patch is covered well over 10%
                bad += int(not mask[t, int(y // 14), int(x // 14)])
            checked += 1
print(json.dumps({"checked": checked, "bad": bad}))
`;

/** stage 1's direction-only phrases (--direction-only): they name nothing but the motion, their grounding mask is the
 * union of the masks of the objects moving that way, and at share 0 no random draw is added (the seeded phrase
 * stream of the committed recipe stays as it was). */
const DIRECTION_ONLY_CHECK = `
import sys, json, numpy as np
sys.path.insert(0, "train")
import data as D, samples as S, stage1_align as A
frames, records = S.load_split(sys.argv[1], "train")
bad = n = 0
for f, r in zip(frames, records):
    o = r["objects"][0]
    text, says = A.object_text(o, np.random.default_rng(7), 0.5, 0.15, 1.0)
    words = set(text.split())
    bad += int(says != {"direction": o["direction"]} or A.motion(o["direction"]) not in text
               or bool(words & (set(D.COLOURS) | set(D.SHAPES) | {"small"})))
    union = np.zeros(len(f) * 36, dtype=bool)
    for p in r["objects"]:
        if p["direction"] == o["direction"]:
            union |= A.object_patches(f, r["objects"], {"colour": p["colour"]})
    bad += int(not np.array_equal(A.object_patches(f, r["objects"], says), union))
    calls = {}
    for share in (0.0, 1e-12):  # 1e-12: draws for the direction-only choice but (almost surely) never takes it
        rec, rng = [], np.random.default_rng(7)
        class Spy:
            def __getattr__(self, name):
                rec.append(name)
                return getattr(rng, name)
        A.object_text(o, Spy(), 0.5, 0.15, share)
        calls[share] = rec
    bad += int(calls[1e-12] != ["random"] + calls[0.0])
    n += 1
print(json.dumps({"checked": n, "bad": bad}))
`;

/** Python prelude of the term checks: the train split of argv[1], and `feature` (videos, T·36 patches, codes) holding
 * on the patches each object covers the one-hot codes of its values of `attributes` (a dict of stage1_align, attribute
 * → values); `names` / `code` index the codes. */
const oneHotFeature = (attributes: string) => `
import sys, json, math, torch, numpy as np
sys.path.insert(0, "train")
import samples as S, stage1_align as A
frames, records = S.load_split(sys.argv[1], "train")
names = [(a, v) for a, values in A.${attributes}.items() for v in values]
code = {n: i for i, n in enumerate(names)}
feature = torch.zeros(len(frames), frames.shape[1] * 36, len(names))
for i, (f, r) in enumerate(zip(frames, records)):
    for o in r["objects"]:
        m = torch.from_numpy(A.object_patches(f, [o], {"colour": o["colour"]}))
        for a in A.${attributes}:
            feature[i, m, code[(a, A.attribute_of(o, a))]] += 1
`;

/** stage 1's region term (--region): with patch embeddings that hold, on the patches an object covers, the one-hot
 * codes of its colour, shape and direction, and phrase embeddings that are those codes, region_loss must be ~0 (each
 * object's region is its own patches, its labels its own values); with the phrases of each attribute rotated (every
 * label now names another value) it must be large; per patch (--region-per-patch) the same, but a patch that two
 * objects share holds both codes, so "right" is ~0.1 there. phrase_separation: ~0 for distinct phrases, ln(n) when an
 * attribute's phrases coincide. attribute_phrases: an attribute's phrases differ only in the value's words. */
const REGION_CHECK = oneHotFeature("ATTRIBUTE_VALUES") + `
class Identity:
    def visual_embeds(self, x):
        return x
def phrases(shift):
    out = {}
    for a, values in A.ATTRIBUTE_VALUES.items():
        rows = torch.stack([torch.nn.functional.one_hot(torch.tensor(code[(a, v)]), len(names)).float() for v in values])
        out[a] = torch.roll(rows, shift, dims=0)
    return out
vids = list(range(len(records)))
def loss(e, per_patch=False):
    return A.region_loss(Identity(), feature.reshape(-1, 36, len(names)), e, frames, records, vids, per_patch).item()
same = {a: torch.ones(len(v), 4) for a, v in A.ATTRIBUTE_VALUES.items()}
collapsed = A.phrase_separation(same).item() - sum(math.log(len(v)) for v in A.ATTRIBUTE_VALUES.values()) / 3
wording = 0
for seed in range(20):
    for a, texts in A.attribute_phrases(np.random.default_rng(seed)).items():
        values = A.ATTRIBUTE_VALUES[a]
        words = [A.motion(v) if a == "direction" else v for v in values]
        wording += int(len(set(t.replace(w, "#") for t, w in zip(texts, words))) != 1 or len(set(texts)) != len(values))
print(json.dumps({"right": loss(phrases(0)), "rotated": loss(phrases(1)),
                  "patch_right": loss(phrases(0), True), "patch_rotated": loss(phrases(1), True),
                  "separated": A.phrase_separation(phrases(0)).item(), "collapsed": abs(collapsed), "wording": wording}))
`;

/** stage 1's direct term (--direct): with a vision feature that holds, on the patches an object covers, the one-hot
 * codes of its shape, direction and event, and heads that read those codes (×20), direct_loss must be ~0 per patch where one
 * object covers it (a shared patch holds two codes); with each head's rows rotated (every label names another value)
 * it must be large. The heads are saved with stage 1's state (resumable) and sized from the vision hidden size. */
const DIRECT_CHECK = oneHotFeature("DIRECT_ATTRIBUTES") + `
def loss(shift):
    heads = A.direct_heads(len(names))
    with torch.no_grad():
        for a, values in A.DIRECT_ATTRIBUTES.items():
            rows = torch.stack([20.0 * torch.nn.functional.one_hot(torch.tensor(code[(a, v)]), len(names)).float()
                                for v in values])
            heads[a].weight.copy_(torch.roll(rows, shift, dims=0))
            heads[a].bias.zero_()
    return A.direct_loss(heads, feature.reshape(-1, 36, len(names)), frames, records, list(range(len(records)))).item()
saved = torch.load(sys.argv[2])["extra"]["direct_heads"]
# The event label against the pixels: an object that appears covers no patch of the first sampled frame, one that
# disappears none of the last; one without an event covers patches of both unless another object hides it.
events, bad = {}, 0
for f, r in zip(frames, records):
    for o in r["objects"]:
        e = A.attribute_of(o, "event")
        events[e] = events.get(e, 0) + 1
        m = A.object_patches(f, [o], {"colour": o["colour"]}).reshape(f.shape[0], -1)
        bad += int(e == "appears" and m[0].any() or e == "disappears" and m[-1].any())
        bad += int(e != "appears" and not m[0].any() and len(r["objects"]) == 1)
print(json.dumps({"right": loss(0), "rotated": loss(1), "events": events, "event_bad": bad,
                  "saved": {k: list(v.shape) for k, v in saved.items()}}))
`;

/** stage 3's choice of rejected answers (--rejected): the generator's, or the SFT model's own greedy answer wherever
 * it is non-empty and wrong (an own answer that equals the generator's distractor is still the model's mistake). */
const REJECTED_CHECK = `
import sys, json
sys.path.insert(0, "train")
import stage3_dpo as P
chunk = [(0, "What colour is the square?", "red", "blue", "colour_of_shape", False)] * 4
print(json.dumps({"data": P.rejected_answers(chunk), "own": P.rejected_answers(chunk, ["", "red", "green", "blue"])}))
`;

/** Per question type, how far the DPO rejected answers' mix is from the right answers' (the largest gap of one answer's
 * share) over argv[1] generated videos: a gap lets DPO lower its loss by a prior over the answer words, whatever the
 * video shows (count's n + 1 rule: "two" rejected in 59% of pairs, "one" in none). */
const REJECTED_MIX_CHECK = `
import sys, json, collections
sys.path.insert(0, "train")
import data as D
right, rejected = collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
for i in range(int(sys.argv[1])):
    for q in D.make_video(5005, i)[1]["qa"]:
        right[q["type"]][q["answer"]] += 1
        rejected[q["type"]][q["rejected"]] += 1
gap = {t: max(abs(right[t][a] - rejected[t][a]) for a in set(right[t]) | set(rejected[t])) / sum(right[t].values())
       for t in right}
print(json.dumps({"gap": gap, "questions": {t: sum(c.values()) for t, c in right.items()}}))
`;

Deno.test("train/data.py: DPO's rejected answers are mixed as the right answers are, in every question type", async () => {
  const { gap, questions } = JSON.parse((await py(["-c", REJECTED_MIX_CHECK, "3000"], {})).trim());
  assertEquals(Object.keys(gap).length, 8, JSON.stringify(questions));
  // count: ~2250 questions, binomial noise of a share ~0.01 (the n + 1 rule's gap: 0.2); the rest: 700–2250 each
  assert(gap.count < 0.04, `count: ${JSON.stringify(gap)}`);
  for (const [type, g] of Object.entries(gap)) assert((g as number) < 0.07, `${type}: ${JSON.stringify(gap)}`);
});

Deno.test({
  name: "train: a few steps of stage 1/2/3 give finite losses and a checkpoint the reference forward reproduces",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ppllava-train-smoke-" });
    const logs = `${dir}/logs`;
    const env = { PPLLAVA_TRAIN_LOGS: logs, OMP_NUM_THREADS: "1" };
    try {
      await py(["train/data.py", `${dir}/data`, "--train", "24", "--val", "4", "--test", "2"], env);
      const common = ["--data", `${dir}/data`, "--out", `${dir}/run`, "--threads", "1", "--batch", "3"];
      // A side run: a new folder holding a copy of one checkpoint of run/, and the stage arguments pointing at it.
      const copyOfRun = async (name: string, checkpoint: string) => {
        await Deno.mkdir(`${dir}/${name}`);
        await Deno.copyFile(`${dir}/run/${checkpoint}`, `${dir}/${name}/${checkpoint}`);
        return ["--data", `${dir}/data`, "--out", `${dir}/${name}`, "--threads", "1", "--batch", "3"];
      };
      const stage1Terms = ["--ground", "1", "--motion-share", "0.5", "--region", "1", "--direct", "1"];
      await py(["train/stage1_align.py", ...common, "--steps", "3", "--log", "s1", ...stage1Terms], env);
      // --freeze-clip (spec §5.3) on a copy of stage 1: base CLIP vision must stay bit-equal, the BT-Adapter must move
      // (video batches of 3 questions on one video, with the region term).
      await py([
        "train/stage2_sft.py",
        ...(await copyOfRun("frozen", "stage1.pt")),
        "--steps",
        "10",
        "--log",
        "s2f",
        "--eval-every",
        "0",
        "--freeze-clip",
        "--mix",
        "1,0,0",
        "--per-video",
        "3",
        "--region",
        "1",
        "--direct",
        "1",
      ], env);
      // SFT's region and direct terms (--region, --direct with stage 1's heads) log their values and, like the answer
      // loss, leave the frozen layers alone.
      for (const key of ["region", "direct"]) {
        const logged = losses(await Deno.readTextFile(`${logs}/s2f.jsonl`), key);
        assert(logged.length === 1 && Number.isFinite(logged[0]) && logged[0] > 0, `SFT ${key}: ${logged}`);
      }
      const frozen = JSON.parse((await py(["-c", FROZEN_CHECK, `${dir}/frozen`], env)).trim());
      assert(frozen.clip_changed === 0 && frozen.clip > 10, `frozen CLIP keys changed: ${JSON.stringify(frozen)}`);
      assert(frozen.bt_changed > 0 && frozen.llm_changed > 0, `nothing else trained: ${JSON.stringify(frozen)}`);
      // Stage 1b: the option lists' embeddings move toward their bare questions' (the validation cosine rises), only
      // the text tower moves, and a rerun keeps the finished state.
      await py(["train/stage1b_query.py", ...common, "--steps", "30", "--batch", "16", "--log", "s1b"], env);
      const cosines = losses(await Deno.readTextFile(`${logs}/s1b.jsonl`), "val_mc_cosine");
      assert(cosines.length === 2 && cosines[1] > cosines[0] + 0.05, `stage 1b val cosine: ${cosines}`);
      const textOnly = async (a: string, b: string) =>
        JSON.parse((await py(["-c", TEXT_ONLY_CHECK, `${dir}/run/${a}`, `${dir}/run/${b}`], env)).trim());
      const moved = await textOnly("stage1.pt", "stage1b.pt");
      assert(
        moved.text_changed > 10 && moved.other_changed === 0 && moved.frozen_positions_changed === 0,
        `stage 1b moved: ${JSON.stringify(moved)}`,
      );
      assert((await py(["train/stage1b_query.py", ...common, "--log", "s1b"], env)).includes("already ran"));
      await py([
        "train/stage2_sft.py",
        ...common,
        "--steps",
        "20",
        "--log",
        "s2",
        "--eval-every",
        "0",
        "--lr",
        "2e-3",
        "--start",
        "stage1b.pt",
      ], env);
      // SFT started from stage 1b's weights and kept its text tower: nothing of the tower differs from stage1b.pt.
      const sftMoved = await textOnly("stage1b.pt", "stage2.pt");
      assert(sftMoved.text_changed === 0 && sftMoved.other_changed > 10, `SFT after 1b: ${JSON.stringify(sftMoved)}`);
      await py(["train/stage3_dpo.py", ...common, "--steps", "2", "--log", "s3"], env);
      const patches = JSON.parse((await py(["-c", PATCHES_CHECK, `${dir}/data`], env)).trim());
      assert(patches.checked > 100 && patches.bad === 0, `object_patches vs geometry: ${JSON.stringify(patches)}`);
      const dirOnly = JSON.parse((await py(["-c", DIRECTION_ONLY_CHECK, `${dir}/data`], env)).trim());
      assert(dirOnly.checked === 24 && dirOnly.bad === 0, `direction-only phrases: ${JSON.stringify(dirOnly)}`);
      const region = JSON.parse((await py(["-c", REGION_CHECK, `${dir}/data`], env)).trim());
      assert(
        region.right < 0.05 && region.rotated > 5 && region.separated < 1e-6 && region.collapsed < 1e-5 &&
          region.wording === 0 && region.patch_right < 0.3 && region.patch_rotated > 5 &&
          // the shared patches make the per-patch form differ from the mean: a per_patch flag that is ignored fails
          region.patch_right > 10 * region.right,
        `region term: ${JSON.stringify(region)}`,
      );
      const direct = JSON.parse((await py(["-c", DIRECT_CHECK, `${dir}/data`, `${dir}/run/stage1.pt`], env)).trim());
      const hidden = 64; // train/model.py VISION hidden_size: the heads read the vision feature itself
      assert(
        direct.right < 0.5 && direct.rotated > 5 && direct.event_bad === 0 && direct.events.appears > 0 &&
          direct.events.disappears > 0 && direct.events.none > 0 &&
          JSON.stringify(direct.saved) ===
            JSON.stringify({
              "shape.weight": [3, hidden],
              "shape.bias": [3],
              "direction.weight": [5, hidden],
              "direction.bias": [5],
              "event.weight": [3, hidden],
              "event.bias": [3],
            }),
        `direct term: ${JSON.stringify(direct)}`,
      );
      const s1 = losses(await Deno.readTextFile(`${logs}/s1.jsonl`), "loss");
      const ground = losses(await Deno.readTextFile(`${logs}/s1.jsonl`), "ground");
      assert(ground.length === 1 && Number.isFinite(ground[0]) && ground[0] >= 0, `grounding loss: ${ground}`);
      for (const key of ["region", "separation", "direct"]) {
        const logged = losses(await Deno.readTextFile(`${logs}/s1.jsonl`), key);
        assert(logged.length === 1 && Number.isFinite(logged[0]) && logged[0] > 0, `${key} term: ${logged}`);
      }
      const s2 = losses(await Deno.readTextFile(`${logs}/s2.jsonl`), "loss");
      assert(s1.length === 1 && s2.length === 2, `unexpected log rows: ${s1} / ${s2}`);
      for (const l of [...s1, ...s2]) assert(Number.isFinite(l) && l > 0, `non-finite loss ${l}`);
      // Stage 2 starts near ln(32064) ≈ 10.4 (uniform over the real vocabulary) and must already be learning.
      assert(s2[1] < s2[0] && s2[0] < 11, `stage 2 loss did not fall: ${s2}`);
      assert(!(await exists(`${logs}/s3.jsonl`)), "stage 3 logs every 10 steps; 2 steps log nothing");
      // Resume: rerunning stage 3 with more steps continues from its saved state.
      await py(["train/stage3_dpo.py", ...common, "--steps", "10", "--log", "s3"], env);
      const s3b = losses(await Deno.readTextFile(`${logs}/s3.jsonl`), "loss");
      assert(s3b.length === 1 && Number.isFinite(s3b[0]), `stage 3 after resume: ${s3b}`);
      // The policy must move away from the frozen SFT reference (a shared-storage bug once kept the margin at 0).
      const margin = losses(await Deno.readTextFile(`${logs}/s3.jsonl`), "reward_margin");
      assert(margin[0] !== 0 && s3b[0] !== Math.log(2), `DPO policy never left the reference: margin ${margin}`);
      // --rejected own: the reference's greedy answers pick the rejected side (logged as own_mistakes per step).
      await py([
        "train/stage3_dpo.py",
        ...(await copyOfRun("own", "stage2.pt")),
        "--steps",
        "10",
        "--log",
        "s3own",
        "--rejected",
        "own",
      ], env);
      const mistakes = losses(await Deno.readTextFile(`${logs}/s3own.jsonl`), "own_mistakes");
      assert(mistakes.length === 1 && mistakes[0] >= 0 && mistakes[0] <= 3, `own mistakes: ${mistakes}`);
      // --rejected mined: the reference answers --mine train items first; its mistakes (kept in stage3_mined.json, each
      // with its own wrong answer as the rejected one) fill half of every batch.
      await py([
        "train/stage3_dpo.py",
        ...(await copyOfRun("mined", "stage2.pt")),
        "--steps",
        "10",
        "--log",
        "s3mined",
        "--rejected",
        "mined",
        "--mine",
        "12",
      ], env);
      const minedRows = (await Deno.readTextFile(`${logs}/s3mined.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
      const minedItems: unknown[][] = JSON.parse(await Deno.readTextFile(`${dir}/mined/stage3_mined.json`));
      assertEquals(minedRows[0].mined_items, 12);
      assertEquals(minedRows[0].mined_mistakes, minedItems.length);
      assert(minedItems.length > 0 && minedItems.length <= 12, `mined mistakes: ${minedItems.length}`);
      for (const [, , answer, wrong] of minedItems) {
        assert(typeof wrong === "string" && wrong !== answer, `a mined pair: ${answer} / ${wrong}`);
      }
      assert(Number.isFinite(minedRows.at(-1).loss), JSON.stringify(minedRows.at(-1)));
      const rejected = JSON.parse((await py(["-c", REJECTED_CHECK], env)).trim());
      assert(
        JSON.stringify(rejected) ===
          JSON.stringify({ data: [["blue", "blue", "blue", "blue"], 0], own: [["blue", "blue", "green", "blue"], 2] }),
        `rejected answers: ${JSON.stringify(rejected)}`,
      );
      // --sft-weight 1: the logged loss is the DPO loss (≈ ln 2 near the reference) plus the chosen answers' NLL
      // (≈ 10 nats on this barely trained model), logged beside it.
      await py([
        "train/stage3_dpo.py",
        ...(await copyOfRun("rpo", "stage2.pt")),
        "--steps",
        "10",
        "--log",
        "s3rpo",
        "--sft-weight",
        "1",
      ], env);
      const [rpo] = (await Deno.readTextFile(`${logs}/s3rpo.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
      assert(
        rpo.chosen_nll > 1 && rpo.loss - rpo.chosen_nll > 0 && rpo.loss - rpo.chosen_nll < 1.5,
        JSON.stringify(rpo),
      );
      // Stage 1 resumed for more steps (on a copy): the kept stage1b.pt is stale and is made again.
      const again = await copyOfRun("query", "stage1.pt");
      await Deno.copyFile(`${dir}/run/stage1b.pt`, `${dir}/query/stage1b.pt`);
      await py(["train/stage1_align.py", ...again, "--steps", "5", "--log", "s1q", ...stage1Terms], env);
      assert((await py(["train/stage1b_query.py", ...again, "--steps", "5", "--log", "s1b"], env)).includes("again"));
      const check = JSON.parse((await py(["train/check_model.py", `${dir}/run/dpo`, `${dir}/data`], env)).trim());
      assert(check.ok === true, JSON.stringify(check));
      for (const [stage, err] of Object.entries(check.max_abs_errors as Record<string, number>)) {
        assert(err < 1e-3, `${stage}: training forward vs reference max abs error ${err}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
