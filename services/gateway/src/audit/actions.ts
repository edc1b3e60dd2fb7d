import { parseRegistryPath } from "../registry/paths.js";

/**
 * Where a part of an audit entry comes from: a path parameter of the route, or a field (a dotted
 * path) of the JSON the call answered, for what a create names only in its answer (a new machine's id).
 */
export type AuditSource = { param: string } | { response: string };

/** How one route's successful calls are recorded. */
export interface AuditedRoute {
  /** A stable name: `<resource>.<verb>`. */
  action: string;
  target: AuditSource;
  /** The app, for a route that names it only in its answer (the app created); otherwise its `app_name`. */
  app?: AuditSource;
  /** The org when the route names it (org and token routes); otherwise the app's org, or the token's. */
  org?: AuditSource;
}

const APP = "/v1/apps/:app_name";
const MACHINE = `${APP}/machines/:machine_id`;
const app = { param: "app_name" };
const machine = { param: "machine_id" };
const orgSlug = { param: "org_slug" };
const machineAction = (verb: string): AuditedRoute => ({ action: `machine.${verb}`, target: machine });
const VOLUME = `${APP}/volumes/:volume_id`;
const volume = { param: "volume_id" };
// A cluster is an app of its name: its calls are recorded under that app (and so its org).
const CLUSTER = "/v1/postgres/:app_name";

/**
 * Every route whose successful calls are audited, by method and route pattern (never by the raw
 * URL, so `/v1/apps/x/machines/y/start` and its siblings stay one action each). Every mutating route
 * of the API must be here (audit/actions.test.ts enumerates the router); tunnels and consoles are
 * GETs that are audited because they open a way into a machine.
 */
export const AUDITED_ROUTES: Readonly<Record<string, AuditedRoute>> = {
  "POST /v1/apps": {
    action: "app.create",
    target: { response: "name" },
    app: { response: "name" },
    org: { response: "organization.slug" },
  },
  [`DELETE ${APP}`]: { action: "app.delete", target: app },
  [`POST ${APP}/machines`]: { action: "machine.create", target: { response: "id" } },
  [`POST ${MACHINE}`]: machineAction("update"),
  [`DELETE ${MACHINE}`]: machineAction("delete"),
  [`POST ${MACHINE}/start`]: machineAction("start"),
  [`POST ${MACHINE}/stop`]: machineAction("stop"),
  [`POST ${MACHINE}/suspend`]: machineAction("suspend"),
  [`POST ${MACHINE}/restart`]: machineAction("restart"),
  [`POST ${MACHINE}/signal`]: machineAction("signal"),
  [`POST ${MACHINE}/cordon`]: machineAction("cordon"),
  [`POST ${MACHINE}/uncordon`]: machineAction("uncordon"),
  [`POST ${MACHINE}/exec`]: machineAction("exec"),
  [`POST ${MACHINE}/metadata/:key`]: machineAction("metadata_set"),
  [`DELETE ${MACHINE}/metadata/:key`]: machineAction("metadata_delete"),
  [`POST ${MACHINE}/lease`]: { action: "lease.acquire", target: machine },
  [`DELETE ${MACHINE}/lease`]: { action: "lease.release", target: machine },
  [`GET ${MACHINE}/tunnel`]: { action: "tunnel.open", target: machine },
  [`GET ${MACHINE}/console`]: { action: "console.open", target: machine },
  [`GET ${APP}/tunnel`]: { action: "tunnel.open", target: app },
  [`GET ${APP}/console`]: { action: "console.open", target: app },
  [`POST ${APP}/builds`]: { action: "build.create", target: { response: "id" } },
  [`POST ${APP}/builds/:build_id/cancel`]: { action: "build.cancel", target: { param: "build_id" } },
  [`POST ${APP}/releases`]: { action: "release.create", target: { response: "version" } },
  [`PATCH ${APP}/releases/:version`]: { action: "release.end", target: { param: "version" } },
  // A POST sets, unsets (null values), stages or deploys what was staged: one update of the app's secrets.
  [`POST ${APP}/secrets`]: { action: "secrets.update", target: app },
  [`POST ${APP}/volumes`]: { action: "volume.create", target: { response: "id" } },
  [`POST ${VOLUME}`]: { action: "volume.update", target: volume },
  [`DELETE ${VOLUME}`]: { action: "volume.delete", target: volume },
  [`PUT ${VOLUME}/extend`]: { action: "volume.extend", target: volume },
  [`POST ${VOLUME}/snapshots`]: { action: "volume.snapshot", target: volume },
  "POST /v1/postgres": {
    action: "postgres.create",
    target: { response: "name" },
    app: { response: "name" },
    org: { response: "org" },
  },
  [`DELETE ${CLUSTER}`]: { action: "postgres.destroy", target: app },
  // The attached app's secret is set by the same call: the target names the app, not the cluster.
  [`POST ${CLUSTER}/attach`]: { action: "postgres.attach", target: { response: "app" } },
  [`POST ${CLUSTER}/detach`]: { action: "postgres.detach", target: { response: "app" } },
  [`POST ${CLUSTER}/failover`]: { action: "postgres.failover", target: { response: "new_primary_id" } },
  // The record of an import (PGCLUSTERS has no event for it): the database it wrote.
  [`POST ${CLUSTER}/import`]: { action: "postgres.import", target: { response: "database" } },
  [`POST ${CLUSTER}/backups`]: { action: "postgres.backup_create", target: { response: "id" } },
  // A restore makes a new cluster (an app of the same org): the target names it.
  [`POST ${CLUSTER}/backups/restore`]: { action: "postgres.backup_restore", target: { response: "name" } },
  [`DELETE ${APP}/secrets/:name`]: { action: "secrets.unset", target: { param: "name" } },
  "POST /v1/orgs/:org_slug/secrets": { action: "org_secrets.update", target: orgSlug, org: orgSlug },
  "DELETE /v1/orgs/:org_slug/secrets/:name": {
    action: "org_secrets.unset",
    target: { param: "name" },
    org: orgSlug,
  },
  "POST /v1/orgs": { action: "org.create", target: { response: "slug" }, org: { response: "slug" } },
  "PUT /v1/orgs/:slug/limits": {
    action: "org.set_limits",
    target: { param: "slug" },
    org: { param: "slug" },
  },
  "POST /v1/tokens": { action: "token.create", target: { response: "id" }, org: { response: "org" } },
  "DELETE /v1/tokens/:id": { action: "token.revoke", target: { param: "id" } },
  "POST /v1/webhooks": { action: "webhook.create", target: { response: "id" }, org: { response: "org" } },
  "DELETE /v1/webhooks/:id": { action: "webhook.delete", target: { param: "id" } },
  "POST /v1/webhooks/:id/deliveries/:event_id/redeliver": {
    action: "webhook.redeliver",
    target: { param: "event_id" },
  },
};

/** The methods whose calls change something; a route with one of them must be in AUDITED_ROUTES. */
export const MUTATING_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** What the registry's one catch-all route did, when it is audited: a push (a manifest stored under a tag or digest). */
export function registryCall(
  method: string,
  path: string,
): { action: string; target: string; app: string } | undefined {
  const p = parseRegistryPath(path.replace(/^\/v2(?=\/|$)/, ""));
  // Blob uploads are steps of a push; the manifest that names them is the push itself.
  if (method !== "PUT" || p?.kind !== "manifest") return undefined;
  // A repository belongs to the app of its name's first component.
  return { action: "registry.push", target: `${p.name}:${p.reference}`, app: p.name.split("/")[0] ?? "" };
}

/** A field of a JSON answer by dotted path, as a string; "" when absent. */
export function fieldOf(json: unknown, path: string): string {
  let v: unknown = json;
  for (const key of path.split(".")) {
    if (typeof v !== "object" || v === null) return "";
    v = (v as Record<string, unknown>)[key];
  }
  return typeof v === "string" || typeof v === "number" ? String(v) : "";
}
