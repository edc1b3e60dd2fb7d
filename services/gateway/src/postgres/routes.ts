import { type Context, Hono } from "hono";
import { type Access, authorizeApp, authorizeOrg, coversApp, coversOrg, principalOf } from "../http/authz.js";
import { readBody } from "../http/body.js";
import { type ApiEnv, requestContext } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { appParam } from "../http/params.js";
import type { SecretsBackend } from "../http/secrets-backend.js";
import {
  AttachRequestSchema,
  CreatePostgresRequestSchema,
  DetachRequestSchema,
  ImportRequestSchema,
  type PostgresBackend,
  RestoreRequestSchema,
} from "./api.js";

/**
 * Path of one cluster. The parameter is `app_name` because a cluster is an app of the same name:
 * the rate limits and the audit trail charge and record it as that app of its org.
 */
export const CLUSTER_PATH = "/postgres/:app_name";

/**
 * The cluster named by the path once the token may do `access` to it: the cluster's app decides its
 * org, so another org's cluster (or an unknown one) is a 404, exactly as its app would be.
 */
function clusterFor(c: Context<ApiEnv>, access: Access): { cluster: string; org: string } {
  const cluster = appParam(c);
  return { cluster, org: authorizeApp(c, cluster, access).org };
}

/**
 * The app an attach or detach changes the secrets of: writable by the token (a 404 when it cannot see
 * it, as everywhere) and in the cluster's org, since only that org's machines reach the cluster over
 * its private network.
 */
function targetApp(c: Context<ApiEnv>, app: string, clusterOrg: string, cluster: string): string {
  const { org } = authorizeApp(c, app, "write");
  if (org !== clusterOrg) {
    throw ApiError.of(
      "invalid_argument",
      `app ${app} is in org ${org} but cluster ${cluster} is in org ${clusterOrg}: attach an app of the cluster's org (its machines are the only ones that reach it)`,
    );
  }
  return app;
}

/**
 * Postgres clusters (docs/postgres.md): `POST /postgres` (create), `GET /postgres` (list),
 * `GET|DELETE /postgres/{name}`, `POST /postgres/{name}/attach|detach|failover|import`, backups
 * (`POST|GET /postgres/{name}/backups`, `POST /postgres/{name}/backups/restore`). Reads need read
 * access to the cluster's org, everything else write access; a create or a destroy is an org's act
 * (as an app's), so an app-scoped token may do neither. An attach sets the connection URI as a
 * deployed secret of the app (machines get it when they next start: the CLI then rolls them, as
 * `hangar secrets set` does); a detach unsets it.
 */
export function postgresRoutes(backend: PostgresBackend, secrets: SecretsBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .post("/postgres", async (c) => {
      const input = await readBody(c, CreatePostgresRequestSchema);
      const org = input.org_slug ?? principalOf(c).org ?? "personal";
      authorizeOrg(c, org, "write");
      const outcome = await backend.create(input, org, requestContext(c));
      if (outcome.done) return c.json(outcome.cluster);
      // Still making members: the manager goes on, and `GET /postgres/{name}` follows it.
      return c.json({ name: input.name, org, status: "creating" }, 202);
    })
    .get("/postgres", async (c) => {
      const p = principalOf(c);
      const org = c.req.query("org_slug") || p.org || "personal";
      if (!coversOrg(p, org)) throw ApiError.of("not_found", `org ${org} not found`);
      const clusters = await backend.list(org, requestContext(c));
      return c.json({ clusters: clusters.filter((cl) => coversApp(p, org, cl.name)) });
    })
    .get(CLUSTER_PATH, async (c) => {
      const { cluster } = clusterFor(c, "read");
      return c.json(await backend.status(cluster, requestContext(c)));
    })
    .delete(CLUSTER_PATH, async (c) => {
      const { cluster } = clusterFor(c, "write");
      if (principalOf(c).apps !== undefined) {
        throw ApiError.of(
          "permission_denied",
          `token is scoped to apps: it may not destroy cluster ${cluster}`,
        );
      }
      await backend.destroy(cluster, requestContext(c));
      return c.json({ name: cluster, status: "destroyed" });
    })
    .post(`${CLUSTER_PATH}/attach`, async (c) => {
      const { cluster, org } = clusterFor(c, "write");
      const input = await readBody(c, AttachRequestSchema);
      const app = targetApp(c, input.app, org, cluster);
      const ctx = requestContext(c);
      const made = await backend.attach(
        cluster,
        {
          app,
          ...(input.database_name ? { database_name: input.database_name } : {}),
          ...(input.variable_name ? { variable_name: input.variable_name } : {}),
        },
        ctx,
      );
      await secrets.update(
        { kind: "app", name: app },
        { values: { [made.variable]: made.connection_uri }, stage: false },
        ctx,
      );
      // The URI holds the password: it went into the app's secret only.
      return c.json({ database: made.database, user: made.user, variable: made.variable, app });
    })
    .post(`${CLUSTER_PATH}/detach`, async (c) => {
      const { cluster, org } = clusterFor(c, "write");
      const { app } = await readBody(c, DetachRequestSchema);
      const ctx = requestContext(c);
      // An app deleted since its attach has no secrets left to unset; the cluster still drops its user.
      const exists = c.get("orgs").orgOf(app) !== undefined;
      if (exists) targetApp(c, app, org, cluster);
      const attachment = (await backend.status(cluster, ctx)).attachments.find((a) => a.app === app);
      if (!attachment) throw ApiError.of("not_found", `app ${app} is not attached to cluster ${cluster}`);
      await backend.detach(cluster, app, ctx);
      const scope = { kind: "app", name: app } as const;
      const held = exists && secrets.list(scope).secrets.some((s) => s.name === attachment.variable);
      if (held) await secrets.update(scope, { values: { [attachment.variable]: null }, stage: false }, ctx);
      return c.json({ ...attachment, secret_unset: held });
    })
    .post(`${CLUSTER_PATH}/failover`, async (c) => {
      const { cluster } = clusterFor(c, "write");
      return c.json(await backend.failover(cluster, requestContext(c)));
    })
    .post(`${CLUSTER_PATH}/import`, async (c) => {
      const { cluster } = clusterFor(c, "write");
      const input = await readBody(c, ImportRequestSchema);
      // The answer never holds the source URL (its password); the importer's lines may name its host.
      return c.json(await backend.import(cluster, input, requestContext(c)));
    })
    .post(`${CLUSTER_PATH}/backups`, async (c) => {
      const { cluster } = clusterFor(c, "write");
      return c.json(await backend.backupCreate(cluster, requestContext(c)));
    })
    .get(`${CLUSTER_PATH}/backups`, async (c) => {
      const { cluster } = clusterFor(c, "read");
      return c.json({ backups: await backend.backupList(cluster, requestContext(c)) });
    })
    .post(`${CLUSTER_PATH}/backups/restore`, async (c) => {
      // The new cluster is made in the source's org: a create there, which an app-scoped token may not do.
      const { cluster, org } = clusterFor(c, "write");
      if (principalOf(c).apps !== undefined)
        throw ApiError.of(
          "permission_denied",
          `token is scoped to apps: it may not create a cluster from ${cluster}`,
        );
      authorizeOrg(c, org, "write");
      const input = await readBody(c, RestoreRequestSchema);
      const outcome = await backend.backupRestore(cluster, input, requestContext(c));
      if (outcome.done) return c.json(outcome.cluster);
      return c.json({ name: input.name, org, status: "creating" }, 202);
    });
}
