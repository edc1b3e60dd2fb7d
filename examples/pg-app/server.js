// A small app with a Postgres database: `hangar postgres attach <db> -a <app>` gives it DATABASE_URL
// (postgres://...@<db>.internal:5432/...), which reaches the cluster's current primary over the
// private network. POST /rows inserts a row and answers its id; GET /rows answers the count and the
// last rows; GET /migrations, how many times migrate.js (the release_command) ran. Without
// DATABASE_URL it still serves /healthz, and says on the other routes what is missing.
import { lookup } from "node:dns/promises";
import { createServer } from "node:http";
import pg from "pg";

const port = Number(process.env.PORT ?? 8080);
const machine = process.env.FLY_MACHINE_ID ?? "local";
const databaseUrl = process.env.DATABASE_URL;
const LAST_ROWS = 10;
// A bounded body: a note is a short text, not an upload.
const MAX_BODY_BYTES = 64 * 1024;

// A pool of a few connections; a connection the cluster closed (a failover) is dropped from the pool
// and the next query opens a new one, which the cluster's router sends to the new primary.
const pool = databaseUrl
  ? new pg.Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: 5000 })
  : null;
pool?.on("error", (err) => console.error(`pg-app: idle connection lost: ${err.message}`));
// True once the table exists; until then the row routes answer 503.
let ready = false;
// What the database's host name resolved to when the table was made (GET / shows it).
let resolved = [];

/** Creates the table, retrying while the database cannot be reached yet (a cluster still starting). */
async function createTable() {
  // An IPv6 literal's hostname keeps its brackets in a URL.
  const host = new URL(databaseUrl).hostname.replace(/^\[(.*)\]$/, "$1");
  for (let attempt = 1; ; attempt++) {
    try {
      // <db>.internal has only AAAA records (6PN): say what it resolved to, to make a failure plain.
      const addresses = (await lookup(host, { all: true })).map((a) => a.address);
      await pool.query(
        "CREATE TABLE IF NOT EXISTS rows (id bigserial PRIMARY KEY, note text NOT NULL, machine_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
      );
      console.log(`pg-app: table ready on ${host} (${addresses.join(", ")})`);
      resolved = addresses;
      ready = true;
      return;
    } catch (err) {
      if (attempt === 1 || attempt % 10 === 0)
        console.error(`pg-app: database not ready (${err.message}), retrying`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** The request's JSON body ({} when empty); rejects a body that is too large or not JSON. */
function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
      if (body.length > MAX_BODY_BYTES) reject(Object.assign(new Error("body too large"), { status: 413 }));
    });
    req.on("end", () => {
      try {
        resolve(body.trim() === "" ? {} : JSON.parse(body));
      } catch {
        reject(Object.assign(new Error("body is not JSON"), { status: 400 }));
      }
    });
    req.on("error", reject);
  });
}

async function insertRow(req, res) {
  const body = await readJson(req);
  const note = body.note ?? "";
  if (typeof note !== "string") return send(res, 400, { error: "note must be a string" });
  const { rows } = await pool.query("INSERT INTO rows (note, machine_id) VALUES ($1, $2) RETURNING id", [
    note,
    machine,
  ]);
  send(res, 201, { id: Number(rows[0].id) });
}

async function listRows(res) {
  const [{ rows: counted }, { rows }] = await Promise.all([
    pool.query("SELECT count(*)::int AS count FROM rows"),
    pool.query("SELECT id, note, machine_id, created_at FROM rows ORDER BY id DESC LIMIT $1", [LAST_ROWS]),
  ]);
  send(res, 200, {
    count: counted[0].count,
    last: rows.map((r) => ({ ...r, id: Number(r.id) })),
    machine_id: machine,
  });
}

const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? "/", "http://app").pathname;
  try {
    if (path === "/healthz") return send(res, 200, { ok: true });
    if (path === "/") {
      // The database's host and port (never its credentials), and what the host name resolved to.
      const database = pool ? new URL(databaseUrl).host : null;
      return send(res, 200, { app: "pg-app", machine_id: machine, database, resolved, ready });
    }
    if (path === "/migrations" && pool) {
      // How many times migrate.js (the release_command) ran against this database.
      const { rows } = await pool.query("SELECT count(*)::int AS count FROM schema_migrations").catch(() => ({
        rows: [{ count: 0 }],
      }));
      return send(res, 200, { count: rows[0].count });
    }
    if (path !== "/rows") return send(res, 404, { error: `no route ${path}: try GET or POST /rows` });
    if (!pool)
      return send(res, 503, { error: "no DATABASE_URL: run `hangar postgres attach <db> -a <app>`" });
    if (!ready) return send(res, 503, { error: "the database is not reachable yet" });
    if (req.method === "POST") return await insertRow(req, res);
    if (req.method === "GET") return await listRows(res);
    send(res, 405, { error: `${req.method} /rows: use GET or POST` });
  } catch (err) {
    // A bad body is the client's; anything else is the database's (unreachable, failing over): retry.
    send(res, err.status ?? 503, { error: err.message });
  }
});

server.listen(port, "0.0.0.0", () => {
  console.log(`pg-app listening on ${port} as machine ${machine}${pool ? "" : " (no DATABASE_URL)"}`);
  if (pool) createTable();
});

// Fly stops machines with SIGINT by default: finish what is in flight, close the pool, then exit.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close(() => pool?.end().finally(() => process.exit(0)) ?? process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
