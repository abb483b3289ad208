// The paired statistics of `ppllava eval --against` and of its PGP-vs-average ablation (src/cli/paired.ts), against
// Python's exact integers: the two-sided binomial tail of the discordant questions, summed in float64 from math.comb.
import { assert, assertEquals, assertThrows } from "./util/assert.ts";
import { mcnemarExact, pairedComparison } from "../src/cli/paired.ts";

const cases: [number, number][] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [10, 2],
  [2, 10],
  [7, 7],
  [15, 14],
  [3, 31],
  [60, 41],
  [104, 77],
  [500, 560],
  [1200, 900],
];

Deno.test("mcnemarExact matches the exact binomial tail computed by Python (math.comb)", async () => {
  const script = "import json, math, sys\n" +
    "out = []\n" +
    "for b, c in json.load(sys.stdin):\n" +
    "    n = b + c\n" +
    "    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))\n" +
    "    out.append(1.0 if n == 0 else min(1.0, float(2 * tail) / float(2 ** n)) if n < 1000 else " +
    "min(1.0, 2 * math.exp(math.log(tail) - n * math.log(2))))\n" +
    "print(json.dumps(out))\n";
  const child = new Deno.Command("/usr/bin/python3", { args: ["-c", script], stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(cases)));
  await writer.close();
  const output = await child.output();
  assertEquals(output.code, 0);
  const want: number[] = JSON.parse(new TextDecoder().decode(output.stdout));
  for (const [i, [b, c]] of cases.entries()) {
    const got = mcnemarExact(b, c);
    const err = Math.abs(got - want[i]) / Math.max(want[i], 1e-300);
    assert(err < 1e-9, `b=${b} c=${c}: ${got} vs Python ${want[i]}`);
    assertEquals(got, mcnemarExact(c, b), "the test is symmetric");
  }
  // A value by hand: 10 against 2 of 12 → 2·(1 + 12 + 66)/4096.
  assert(Math.abs(mcnemarExact(10, 2) - 158 / 4096) < 1e-15);
  assertThrows(() => mcnemarExact(-1, 2), RangeError);
  assertThrows(() => mcnemarExact(1.5, 2), RangeError);
});

Deno.test("pairedComparison counts each question once, by which side has the property", () => {
  const pairs = [
    ...Array(5).fill({ base: true, other: true }),
    ...Array(3).fill({ base: true, other: false }),
    ...Array(9).fill({ base: false, other: true }),
    ...Array(4).fill({ base: false, other: false }),
  ];
  const r = pairedComparison(pairs);
  assertEquals([r.questions, r.onlyBase, r.onlyOther], [21, 3, 9]);
  assertEquals([r.baseRate, r.otherRate], [8 / 21, 14 / 21]);
  assertEquals(r.p, mcnemarExact(3, 9));
  assertEquals(pairedComparison([]).p, 1);
});
