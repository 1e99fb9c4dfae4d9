// A tiny typed fetch wrapper over the types generated from openapi/openapi.json
// (src/schema.d.ts, by openapi-typescript; `npm run generate` rewrites it). Every path,
// request body and 200 answer is checked against the spec at compile time; errors are
// thrown as LosslabError carrying the problem+json (RFC 9457) with its field pointers.

import type { components, paths } from "./schema.d.ts";

export type { components, paths };
export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

type Method = "get" | "post";
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
/** The paths that have an operation for method M. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined | never ? never : P;
}[keyof paths];
/** The JSON request body of an operation. */
export type RequestBody<O> = O extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
/** The JSON 200 answer of an operation. */
export type Answer<O> = O extends { responses: { 200: { content: { "application/json": infer R } } } } ? R : unknown;
type PathParams<O> = O extends { parameters: { path: infer PP } } ? (PP extends Record<string, unknown> ? PP : never) : never;

/** An error answer: `status`, and the problem document with `errors[].field` pointers. */
export class LosslabError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title}: ${problem.detail}`);
    this.name = "LosslabError";
  }
  /** The JSON pointers of the offending fields (`/targets/3`). */
  get fields(): string[] {
    return this.problem.errors.map((e) => e.field);
  }
}

export interface ClientOptions {
  /** Default: the page's own origin (the playground) or http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <key>` (a class server with API keys). */
  apiKey?: string;
  fetch?: typeof fetch;
}

export function createClient(options: ClientOptions = {}) {
  const baseUrl = (options.baseUrl ?? "http://127.0.0.1:8080").replace(/\/$/, "");
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const auth: Record<string, string> = options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {};

  async function send<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const res = await doFetch(baseUrl + path, {
      method: method.toUpperCase(),
      headers: body === undefined ? { ...auth } : { ...auth, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      let problem: Problem;
      try {
        problem = JSON.parse(text) as Problem;
      } catch {
        problem = { type: "about:blank", title: res.statusText, status: res.status, detail: text, errors: [] };
      }
      throw new LosslabError(res.status, problem);
    }
    return (res.headers.get("content-type") ?? "").includes("json") ? (JSON.parse(text) as T) : (text as T);
  }

  function fill(path: string, params: Record<string, unknown> | undefined): string {
    return path.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(String(params?.[k])));
  }

  return {
    /** GET any path of the spec. */
    get<P extends PathsWith<"get">>(path: P): Promise<Answer<Op<P, "get">>> {
      return send("get", path);
    },
    /** POST a JSON body to any path of the spec (`params` fills `{kind}`). */
    post<P extends PathsWith<"post">>(
      path: P,
      body: RequestBody<Op<P, "post">>,
      ...params: PathParams<Op<P, "post">> extends never ? [] : [PathParams<Op<P, "post">>]
    ): Promise<Answer<Op<P, "post">>> {
      return send("post", fill(path, params[0] as Record<string, unknown> | undefined), body);
    },
    loss(kind: string, body: Schemas["LossRequest"]): Promise<Schemas["LossResponse"]> {
      return send("post", `/loss/${encodeURIComponent(kind)}`, body);
    },
    gradient(body: Schemas["GradientRequest"]): Promise<Schemas["GradientResponse"]> {
      return send("post", "/gradient", body);
    },
    train(body: Schemas["TrainRequest"]): Promise<Schemas["TrainResponse"]> {
      return send("post", "/train", body);
    },
    losses(): Promise<Schemas["Catalogue"]> {
      return send("get", "/losses");
    },
    examples(): Promise<Schemas["TrainExample"][]> {
      return send("get", "/train/examples");
    },
  };
}

export type Client = ReturnType<typeof createClient>;
