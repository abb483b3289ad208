/**
 * The long media fuzz run: tests/media_fuzz.test.ts with FUZZ_CASES (default 200,000) instead of CI's 20,000.
 * Prints the test's own summary (cases, seconds, slowest case, module memory, outcomes).
 */
export async function main(): Promise<void> {
  const cases = Deno.env.get("FUZZ_CASES") ?? "200000";
  const command = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "tests/media_fuzz.test.ts"],
    env: { FUZZ_CASES: cases },
    cwd: new URL("..", import.meta.url).pathname,
  });
  const result = await command.output();
  const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  console.log(text.split("\n").filter((line) => /cases in|failures|case \d|passed|failed/.test(line)).join("\n"));
  if (!result.success) throw new Error("the long media fuzz run failed");
}

if (import.meta.main) await main();
