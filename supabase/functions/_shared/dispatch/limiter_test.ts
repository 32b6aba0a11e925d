import assert from "node:assert/strict";
import { Limiter } from "./limiter.ts";
import { gate, startReceiver } from "../../_test/receiver.ts";

Deno.test("limiter: never exceeds the global cap or the per-key cap", async () => {
  const limiter = new Limiter({ global: 3, perKey: 2 });
  const running = new Map<string, number>();
  let total = 0;
  let maxTotal = 0;
  const maxPerKey = new Map<string, number>();
  const gates = Array.from({ length: 12 }, () => gate());

  const tasks = gates.map((g, i) => {
    const key = ["a", "b", "c"][i % 3];
    return limiter.run(key, async () => {
      total++;
      running.set(key, (running.get(key) ?? 0) + 1);
      maxTotal = Math.max(maxTotal, total);
      maxPerKey.set(key, Math.max(maxPerKey.get(key) ?? 0, running.get(key)!));
      await g.opened;
      total--;
      running.set(key, running.get(key)! - 1);
      return i;
    });
  });

  // Let tasks finish one at a time, in an order unrelated to submission.
  for (const i of [5, 0, 11, 3, 1, 2, 4, 6, 7, 8, 9, 10]) {
    await new Promise((r) => setTimeout(r, 1));
    assert.ok(limiter.running <= 3);
    gates[i].open();
  }
  assert.deepEqual(await Promise.all(tasks), gates.map((_, i) => i));
  assert.equal(maxTotal, 3);
  assert.ok([...maxPerKey.values()].every((n) => n <= 2), JSON.stringify([...maxPerKey]));
  assert.equal(limiter.running, 0);
  assert.equal(limiter.waiting, 0);
});

Deno.test("limiter: a freed slot goes to the oldest waiter whose key has room", async () => {
  const limiter = new Limiter({ global: 2, perKey: 1 });
  const order: string[] = [];
  const slowA = gate();
  const first = limiter.run("a", async () => {
    order.push("a1");
    await slowA.opened;
  });
  const second = limiter.run("a", () => Promise.resolve(void order.push("a2"))); // waits behind a1 (per key)
  const third = limiter.run("b", () => Promise.resolve(void order.push("b1"))); // gets the second global slot
  await third;
  assert.deepEqual(order, ["a1", "b1"], "b is not stuck behind the queued a2");
  slowA.open();
  await Promise.all([first, second]);
  assert.deepEqual(order, ["a1", "b1", "a2"]);
});

Deno.test("limiter: a failing task releases its slot and rejects its caller", async () => {
  const limiter = new Limiter({ global: 1, perKey: 1 });
  await assert.rejects(limiter.run("a", () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await limiter.run("a", () => Promise.resolve("next")), "next");
  assert.equal(limiter.running, 0);
});

Deno.test("limiter: caps must be positive integers", () => {
  assert.throws(() => new Limiter({ global: 0, perKey: 1 }), RangeError);
  assert.throws(() => new Limiter({ global: 1, perKey: 1.5 }), RangeError);
});

Deno.test("limiter: a slow endpoint cannot starve a fast one (real receivers)", async () => {
  const releaseSlow = gate();
  await using slow = startReceiver(async () => {
    await releaseSlow.opened;
    return new Response("slow");
  });
  await using fast = startReceiver(() => new Response("fast"));
  const limiter = new Limiter({ global: 4, perKey: 2 });
  const post = (url: string) => fetch(url, { method: "POST", body: "{}" }).then((r) => r.text());

  // The slow endpoint's backlog is queued first and would fill every global
  // slot without the per-key cap.
  const slowResults = Array.from({ length: 8 }, () => limiter.run("slow", () => post(slow.origin)));
  // Should the limiter starve the fast endpoint, this releases the slow one
  // after a while so the test fails instead of hanging.
  let starved = false;
  const fallback = setTimeout(() => {
    starved = true;
    releaseSlow.open();
  }, 5_000);
  const fastResults = await Promise.all(Array.from({ length: 6 }, () => limiter.run("fast", () => post(fast.origin))));
  clearTimeout(fallback);
  assert.equal(starved, false, "the fast endpoint waited for the slow one");

  assert.deepEqual(fastResults, Array(6).fill("fast"));
  assert.equal(fast.requests.length, 6);
  assert.equal(limiter.running, 2, "the slow endpoint holds exactly its perKey slots");
  assert.equal(limiter.waiting, 6);
  assert.ok(slow.requests.length <= 2, "no more than perKey requests reached the slow endpoint meanwhile");
  releaseSlow.open();
  assert.deepEqual(await Promise.all(slowResults), Array(8).fill("slow"));
  assert.equal(slow.requests.length, 8);
});
