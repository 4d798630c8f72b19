// SPLAI's REST API from TypeScript: `paths`/`components` are generated from contract/openapi.json
// (openapi-typescript, `npm run generate`) and every call goes through openapi-fetch, typed by
// them. This layer adds what generation cannot express: a job's event stream over SSE that
// resumes after a drop with `Last-Event-ID`, submissions that cannot run twice when retried (an
// idempotency key is added and kept), and every error answer thrown as a typed `SplaiError`.

import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";
export type JobSubmission = components["schemas"]["JobSubmission"];
export type ErrorBody = components["schemas"]["ErrorBody"];

/** An error answer: the HTTP status and the server's `ErrorBody`. */
export class SplaiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly retryAfterS?: number,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = "SplaiError";
  }
}

/** One server-sent event of a job's stream; `id` is its per-job sequence number. */
export interface StreamEvent {
  id?: string;
  event: string;
  data: unknown;
}

export interface ClientOptions {
  /** Bearer token, when the gateway has auth on. */
  token?: string;
  /** Tenant (header `X-SPLAI-Tenant`) when the token allows it. */
  tenant?: string;
  /** Retries after 429, 503 or a network error (default 3). */
  retries?: number;
}

/** Statuses after which the same request may succeed. */
const RETRYABLE = new Set([429, 503]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Answer = { data?: unknown; error?: unknown; response: Response };

export class Client {
  readonly api;
  private readonly headers: Record<string, string>;
  private readonly retries: number;

  constructor(readonly baseUrl: string, options: ClientOptions = {}) {
    this.headers = {};
    if (options.token) this.headers.Authorization = `Bearer ${options.token}`;
    if (options.tenant) this.headers["X-SPLAI-Tenant"] = options.tenant;
    this.retries = options.retries ?? 3;
    this.api = createClient<paths>({ baseUrl, headers: this.headers });
  }

  /** Run `send`, retrying retryable failures; the body of a 2xx, or a thrown `SplaiError`. */
  private async call<T>(send: () => Promise<Answer>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let answer: Answer;
      try {
        answer = await send();
      } catch (e) {
        if (attempt >= this.retries) throw e;
        await sleep(Math.min(200 * 2 ** attempt, 5000));
        continue;
      }
      const { response } = answer;
      if (response.ok) return (answer.data ?? (await bodyOf(response))) as T;
      const error = errorOf(response.status, answer.error, response.headers.get("retry-after"));
      if (RETRYABLE.has(response.status) && attempt < this.retries) {
        await sleep(error.retryAfterS ? error.retryAfterS * 1000 : Math.min(200 * 2 ** attempt, 5000));
        continue;
      }
      throw error;
    }
  }

  /** Submit a job; `{job_id, trace_id, state, links}`. An idempotency key is added when absent,
   * so a retry after a lost answer finds the job it made instead of making another. */
  submit(request: JobSubmission): Promise<{ job_id: string; state: string; trace_id?: string }> {
    const body = { ...request, idempotency_key: request.idempotency_key ?? `ts-${crypto.randomUUID()}` };
    return this.call(() => this.api.POST("/v1/jobs", { body }));
  }

  job(id: string): Promise<Record<string, any>> {
    return this.call(() => this.api.GET("/v1/jobs/{id}", { params: { path: { id } } }));
  }

  cancel(id: string): Promise<{ job_id: string; state: string }> {
    return this.call(() => this.api.DELETE("/v1/jobs/{id}", { params: { path: { id } } }));
  }

  artifacts(id: string): Promise<{ artifacts: Record<string, any>[] }> {
    return this.call(() => this.api.GET("/v1/jobs/{id}/artifacts", { params: { path: { id } } }));
  }

  artifact(id: string, task: string, attempt: number): Promise<any> {
    return this.call(() =>
      this.api.GET("/v1/jobs/{id}/artifacts/{task}/{attempt}", { params: { path: { id, task, attempt } } }),
    );
  }

  lineage(id: string): Promise<{ tasks: Record<string, any>[] }> {
    return this.call(() => this.api.GET("/v1/jobs/{id}/lineage", { params: { path: { id } } }));
  }

  /** The job's events from the start (or after `lastEventId`) to `end`; a dropped connection
   * is resumed with `Last-Event-ID`, so no event is missed or repeated. */
  async *stream(id: string, lastEventId?: string, reconnects = 5): AsyncGenerator<StreamEvent> {
    let drops = 0;
    for (;;) {
      const headers: Record<string, string> = { ...this.headers, Accept: "text/event-stream" };
      if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
      let response: Response;
      try {
        response = await fetch(`${this.baseUrl}/v1/jobs/${encodeURIComponent(id)}/stream`, { headers });
      } catch (e) {
        if (++drops > reconnects) throw e;
        await sleep(Math.min(200 * 2 ** drops, 5000));
        continue;
      }
      if (!response.ok) throw errorOf(response.status, await bodyOf(response), null);
      try {
        for await (const event of events(response)) {
          if (event.id !== undefined) lastEventId = event.id;
          yield event;
          if (event.event === "end") return;
        }
      } catch (e) {
        if (++drops > reconnects) throw e;
      }
      await sleep(Math.min(200 * 2 ** drops, 5000));
    }
  }

  /** Follow the job's stream to its end; the job as `job()` then answers. */
  async wait(id: string): Promise<Record<string, any>> {
    for await (const _ of this.stream(id)) {
      // The stream's end is the job's end.
    }
    return this.job(id);
  }
}

async function bodyOf(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

function errorOf(status: number, body: unknown, retryAfter: string | null): SplaiError {
  const e = (body ?? {}) as Partial<ErrorBody>;
  const retry = retryAfter ? Number(retryAfter) : undefined;
  return new SplaiError(status, e.code ?? "unexpected", e.message ?? String(body), e.field ?? undefined, retry);
}

/** Server-sent events of a response body (the text/event-stream format; comments skipped). */
async function* events(response: Response): AsyncGenerator<StreamEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | undefined;
  let name = "message";
  let data: string[] = [];
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (data.length > 0) {
          const text = data.join("\n");
          let value: unknown = text;
          try {
            value = JSON.parse(text);
          } catch {
            // Not JSON: kept as text.
          }
          yield { id, event: name, data: value };
        }
        id = undefined;
        name = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") id = value;
      else if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
  }
}
