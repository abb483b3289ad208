/**
 * src/util/workers.ts's watchdog: a call that hears nothing from its worker for `stallMs` fails it as "stalled"
 * (and the worker is stopped), while a long call that reports progress runs to its end.
 */
import { RpcWorker, WorkerError } from "../src/util/workers.ts";
import { assert, assertEquals, assertRejects } from "./util/assert.ts";

const WORKER = new URL("./util/rpc_test_worker.ts", import.meta.url);

Deno.test("worker watchdog: progress keeps a long call alive; silence beyond stallMs stops the worker, typed", async () => {
  const worker = await RpcWorker.spawn(WORKER, { label: "watched", stallMs: 400 });
  try {
    // 1.5 s of work, more than three stall periods, with a progress report every 100 ms; a call queued behind it
    // waits as long without a word about itself, and is not blamed (the worker answers in order).
    assertEquals(
      await Promise.all([worker.call("work", { ms: 1500, step: 100, report: true }), worker.call("echo", "queued")]),
      [1500, "queued"],
    );
    assertEquals(await worker.call("echo", { a: 1 }), { a: 1 });
    // The same work without reports is a stall.
    const start = performance.now();
    const stalled = await assertRejects(() => worker.call("work", { ms: 1500, step: 100, report: false }), WorkerError);
    const seconds = (performance.now() - start) / 1000;
    assertEquals(stalled.code, "stalled");
    assert(stalled.message.includes("watched") && stalled.message.includes("work"), stalled.message);
    assert(seconds < 1.4, `the stall was declared after ${seconds.toFixed(2)} s, not about 0.4 s`);
    // The worker is gone: later calls fail at once with the same error.
    assertEquals(worker.failed?.code, "stalled");
    assertEquals((await assertRejects(() => worker.call("echo", 1), WorkerError)).code, "stalled");
  } finally {
    worker.terminate();
  }
});

Deno.test("worker watchdog: a runaway handler is stopped; without stallMs nothing is timed", async () => {
  const watched = await RpcWorker.spawn(WORKER, { stallMs: 300 });
  let crashed: WorkerError | undefined;
  watched.onCrash = (error) => (crashed = error);
  assertEquals((await assertRejects(() => watched.call("hang"), WorkerError)).code, "stalled");
  assertEquals(crashed?.code, "stalled", "onCrash hears of a stall (ShardedLlama stops the other shards on it)");
  const unwatched = await RpcWorker.spawn(WORKER);
  try {
    assertEquals(await unwatched.call("work", { ms: 700, step: 700, report: false }), 700);
  } finally {
    unwatched.terminate();
  }
  await assertRejects(() => RpcWorker.spawn(WORKER, { stallMs: -1 }), WorkerError);
});
