import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { ApiError, MemberAgent } from "./agent.js";
import type { MemberBackups } from "./backup.js";
import { type Member, memberProblem, membersProblem } from "./logic.js";

/** Bodies larger than this are refused: every request of the API is a few hundred bytes. */
const MAX_BODY = 64 * 1024;

type Handler = (body: Record<string, unknown>) => Promise<unknown>;

/**
 * The control API (HTTP/1.1, JSON): every route needs `Authorization: Bearer <HANGAR_PG_AGENT_TOKEN>`
 * (the cluster app's secret: the manager and the member's peers have it), else 401 and nothing is done.
 */
export function controlServer(agent: MemberAgent, token: string, backups?: MemberBackups): Server {
  const routes: Record<string, Handler> = {
    "GET /status": () => agent.status(),
    // The WAL position postgres gives now, waiting for a slow one (a failover chooses by it).
    "GET /status/fresh": () => agent.status(true),
    "POST /configure": (b) => agent.configure(members(b.members)),
    "POST /bootstrap": (b) => agent.bootstrap(members(b.members ?? [])),
    "POST /replicate": (b) => agent.replicate(member(b.primary, "primary")),
    "POST /promote": () => agent.promote(),
    "POST /follow": (b) => agent.follow(member(b.primary, "primary")),
    "POST /fence": () => agent.fence("the control API said so"),
    "POST /unfence": () => agent.unfence(),
    "POST /database": (b) => {
      MemberAgent.checkNames({ database: b.database, user: b.user });
      if (typeof b.password !== "string" || b.password.length < 8)
        throw new ApiError(400, "invalid_argument", "password must be a string of at least 8 characters");
      return agent.createDatabase(b.database as string, b.user as string, b.password);
    },
    "DELETE /database": (b) => {
      MemberAgent.checkNames({ database: b.database, user: b.user });
      return agent.dropDatabase(b.database as string, b.user as string);
    },
  };
  const expected = Buffer.from(`Bearer ${token}`);
  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const e =
        error instanceof ApiError
          ? error
          : new ApiError(503, "unavailable", (error as Error).message ?? String(error));
      send(res, e.status, { error: e.message, code: e.code });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const given = Buffer.from(req.headers.authorization ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      req.resume();
      throw new ApiError(
        401,
        "unauthenticated",
        "a bearer token (the cluster's HANGAR_PG_AGENT_TOKEN) is required",
      );
    }
    const path = new URL(req.url ?? "/", "http://member").pathname;
    // The backup routes stream raw bytes (WAL, base backup tars): served before the JSON routes.
    if (backups && (await backups.handle(req, res, req.method ?? "", path))) return;
    const handler = routes[`${req.method} ${path}`];
    if (handler === undefined) {
      req.resume();
      throw new ApiError(404, "not_found", `no route ${req.method} ${path}`);
    }
    send(res, 200, await handler(await readJson(req)));
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY)
      throw new ApiError(400, "invalid_argument", `the body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_argument", "the body is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiError(400, "invalid_argument", "the body must be a JSON object");
  return body as Record<string, unknown>;
}

function members(value: unknown): Member[] {
  const problem = membersProblem(value);
  if (problem) throw new ApiError(400, "invalid_argument", problem);
  return (value as Member[]).map((m) => ({ id: m.id, address: m.address }));
}

function member(value: unknown, field: string): Member {
  const problem = memberProblem(value);
  if (problem) throw new ApiError(400, "invalid_argument", `${field}: ${problem}`);
  const m = value as Member;
  return { id: m.id, address: m.address };
}
