/**
 * Training smoke test (issue 4): a few steps of each stage of train/ on a tiny generated sample, then the saved
 * DPO checkpoint is run by the float64 reference forward (tests/oracles/ppllava_reference.py) and by the training
 * forward, which must agree (train/check_model.py); every logged loss must be finite and stage 2's loss must fall.
 */
import { assert } from "./util/assert.ts";

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
      await py(["train/stage1_align.py", ...common, "--steps", "3", "--log", "s1"], env);
      await py(["train/stage2_sft.py", ...common, "--steps", "20", "--log", "s2", "--eval-every", "0", "--lr", "2e-3"], env);
      await py(["train/stage3_dpo.py", ...common, "--steps", "2", "--log", "s3"], env);
      const s1 = losses(await Deno.readTextFile(`${logs}/s1.jsonl`), "loss");
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
