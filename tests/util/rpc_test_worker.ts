// A worker for tests/workers.test.ts: busy handlers with and without progress reports, and one that never returns.
import { serveRequests } from "../../src/util/workers.ts";

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy, like a kernel
  }
}

await serveRequests({
  /** Busy for `ms` in steps of `step` ms, reporting progress after each step when `report`. */
  work(args: { ms: number; step: number; report: boolean }, context) {
    for (let done = 0; done < args.ms; done += args.step) {
      spin(args.step);
      if (args.report) context.progress();
    }
    return args.ms;
  },
  hang() {
    for (;;) {
      // never returns
    }
  },
  echo(args: unknown) {
    return args;
  },
});
