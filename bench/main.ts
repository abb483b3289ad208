/**
 * Runs benchmarks: with no arguments every bench/<name>.ts, else the named ones (`… bench/main.ts relevance`).
 * Each bench file exports `main()`, which times ours and the peers in one run (bench/harness.ts).
 */
const infrastructure = new Set(["harness", "main"]);
const all: string[] = [];
for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
  const name = entry.name.replace(/\.ts$/, "");
  if (entry.isFile && entry.name.endsWith(".ts") && !infrastructure.has(name)) all.push(name);
}
const chosen = Deno.args.length ? Deno.args : all.sort();
for (const name of chosen) {
  if (!all.includes(name)) throw new Error(`no benchmark bench/${name}.ts (have: ${all.join(", ")})`);
  const module = await import(`./${name}.ts`);
  await module.main();
}
