// The TypeScript client against a running `splai up` (SPLAI_URL): submit, follow the stream with
// resume, artifacts and lineage, idempotency, cancel, and a 4xx body as a typed SplaiError.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, SplaiError, type JobSubmission } from "../src/index.js";

const url = process.env.SPLAI_URL;

test("the TypeScript client drives a job end to end", { skip: !url && "SPLAI_URL is not set" }, async () => {
  const client = new Client(url!);
  const job: JobSubmission = {
    type: "explicit",
    dag: {
      tasks: [
        { id: "greet", kind: "tool_execution",
          inputs: { tool: { literal: "template" }, template: { literal: "Hi {{name}}" }, name: { literal: "Grace" } } },
        { id: "report", kind: "aggregation", parents: ["greet"],
          inputs: { "part-0": { output: { task: "greet", pointer: "/text" } } } },
      ],
    },
  };
  const { job_id } = await client.submit(job);
  const seen = [];
  for await (const event of client.stream(job_id)) seen.push(event);
  assert.equal(seen[0].event, "job.snapshot");
  assert.equal(seen.at(-1)!.event, "end");
  const done = await client.job(job_id);
  assert.equal(done.state, "succeeded", JSON.stringify(done));
  assert.equal(done.result.text, "Hi Grace");

  // From the first event on (Last-Event-ID 0), whenever the job ended: the fresh stream's events
  // past its snapshot are the tail of these. Resumed after the first: exactly the rest.
  const all = [];
  for await (const event of client.stream(job_id, "0")) all.push(event);
  const numbered = all.filter((e) => e.id !== undefined);
  assert.ok(numbered.length >= 2, JSON.stringify(all));
  const fresh = seen.filter((e) => e.id !== undefined && e.event !== "job.snapshot").map((e) => e.id);
  assert.deepEqual(numbered.map((e) => e.id).slice(numbered.length - fresh.length), fresh);
  const resumed = [];
  for await (const event of client.stream(job_id, numbered[0].id)) resumed.push(event);
  assert.deepEqual(resumed.filter((e) => e.id !== undefined).map((e) => e.id), numbered.slice(1).map((e) => e.id));

  const { artifacts } = await client.artifacts(job_id);
  const greet = artifacts.find((a) => a.task_id === "greet")!;
  assert.equal((await client.artifact(job_id, "greet", greet.attempt)).text, "Hi Grace");
  const lineage = await client.lineage(job_id);
  assert.deepEqual(lineage.tasks.find((t) => t.task_id === "report")!.parents, ["greet"]);

  // The same idempotency key twice is one job.
  const once: JobSubmission = { ...job, idempotency_key: `ts-once-${Date.now()}` };
  assert.equal((await client.submit(once)).job_id, (await client.submit(once)).job_id);

  // Cancel a job that would sleep a minute.
  const nap = await client.submit({ type: "explicit", dag: { tasks: [
    { id: "nap", kind: "tool_execution", inputs: { tool: { literal: "sleep" }, ms: { literal: 60000 } } }] } });
  await client.cancel(nap.job_id);
  assert.equal((await client.wait(nap.job_id)).state, "cancelled");

  // A 4xx arrives as a typed error carrying the server's code and field.
  await assert.rejects(client.job("no-such-job"), (e: unknown) => e instanceof SplaiError && e.status === 404 && e.code === "not_found");
  await assert.rejects(client.submit({ type: "explicit" } as JobSubmission),
    (e: unknown) => e instanceof SplaiError && e.status === 400 && e.field === "dag");
});
