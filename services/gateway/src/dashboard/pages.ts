import type { PgClusterView } from "@hangar/service";
import type { AppListView, AppView, MachineView } from "../http/backend.js";
import type { ReleaseView } from "../http/releases-backend.js";
import type { ScalingView } from "../scaling/catalog.js";
import type { VolumeView } from "../volumes/api.js";
import { type Html, type HtmlValue, html } from "./html.js";

/** The one page frame: the style sheet, the script (both from /dashboard/static), the header. */
export function layout(
  title: string,
  body: Html,
  opts: { signedIn: boolean; appName?: string; since?: string | undefined },
): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Hangar</title>
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
<script src="/dashboard/static/dashboard.js" defer></script>
</head>
<body>
<header>
<a href="/dashboard">Hangar</a>
${
  opts.signedIn
    ? html`<form method="post" action="/dashboard/logout"><button type="submit">Log out</button></form>`
    : ""
}
</header>
<main${opts.appName === undefined ? "" : html` data-app="${opts.appName}"`}${
    opts.since === undefined ? "" : html` data-since="${opts.since}"`
  }>
${body}
</main>
</body>
</html>
`;
}

/** The login form; `error` says why the last attempt was refused. */
export function loginPage(error?: string): Html {
  return layout(
    "Log in",
    html`<section class="login">
<h1>Log in to Hangar</h1>
<p>Paste an API token: one from <code>hangar tokens create</code>, or the <code>token</code> in <code>$HANGAR_HOME/local.json</code> after <code>npm start</code>.</p>
${error === undefined ? "" : html`<p class="error" role="alert">${error}</p>`}
<form method="post" action="/dashboard/login">
<label for="token">Token</label>
<textarea id="token" name="token" rows="4" required autocomplete="off" spellcheck="false"></textarea>
<p><button type="submit">Log in</button></p>
</form>
</section>`,
    { signedIn: false },
  );
}

/** A page for a refused or failed request: what the API said, with its status. */
export function errorPage(status: number, message: string): Html {
  return layout(
    `${status}`,
    html`<h1>${status}</h1><p class="error">${message}</p><p><a href="/dashboard">Back to the apps</a></p>`,
    {
      signedIn: true,
    },
  );
}

function table(headings: string[], rows: Html[], empty: string): Html {
  return html`<table><thead><tr>${headings.map((h) => html`<th>${h}</th>`)}</tr></thead>
<tbody>${rows.length > 0 ? rows : html`<tr><td class="empty" colspan="${headings.length}">${empty}</td></tr>`}</tbody></table>`;
}

/** One org of the home page: its apps and Postgres clusters. */
export interface OrgOverview {
  slug: string;
  name: string;
  apps: AppListView["apps"];
  clusters: PgClusterView[];
}

function clustersTable(clusters: PgClusterView[]): Html {
  return table(
    ["cluster", "status", "region", "primary", "members", "attached apps"],
    clusters.map(
      (
        cl,
      ) => html`<tr><td>${cl.name}</td><td class="status-${cl.status}">${cl.status}</td><td>${cl.region}</td>
<td>${cl.primary_id ?? "none"}</td><td>${cl.members.length}</td><td>${cl.attachments.map((a) => a.app).join(", ")}</td></tr>`,
    ),
    "no Postgres clusters",
  );
}

/** The home page: every org the token covers, its apps (links to their pages) and Postgres clusters. */
export function homePage(orgs: OrgOverview[]): Html {
  const sections = orgs.map(
    (o) => html`<section class="org" data-org="${o.slug}">
<h2>Org ${o.name}${o.name === o.slug ? "" : html` (${o.slug})`}</h2>
${table(
  ["app", "machines"],
  o.apps.map(
    (a) =>
      html`<tr><td><a href="/dashboard/apps/${encodeURIComponent(a.name)}">${a.name}</a></td><td>${a.machine_count}</td></tr>`,
  ),
  "no apps",
)}
<h3>Postgres clusters</h3>
${clustersTable(o.clusters)}
</section>`,
  );
  return layout(
    "Apps",
    html`<h1>Orgs and apps</h1>${sections.length > 0 ? sections : html`<p class="empty">This token covers no org.</p>`}`,
    { signedIn: true },
  );
}

/** The rows of the machines table (also served alone, for the live refresh). */
export function machineRows(machines: MachineView[]): Html {
  return table(
    ["machine", "name", "state", "region", "image", "updated"],
    machines.map(
      (m) => html`<tr data-machine-id="${m.id}"><td><code>${m.id}</code></td><td>${m.name}</td>
<td class="state state-${m.state}">${m.state}</td><td>${m.region}</td><td>${m.config.image}</td><td class="updated">${m.updated_at}</td></tr>`,
    ),
    "no machines",
  );
}

export function releaseRows(releases: ReleaseView[]): Html {
  return table(
    ["version", "status", "image", "description", "created"],
    releases.map(
      (r) =>
        html`<tr><td>v${r.version}</td><td class="status-${r.status}">${r.status}${
          r.reason === null ? "" : html`: ${r.reason}`
        }</td><td>${r.image}</td><td>${r.description}</td><td>${r.created_at}</td></tr>`,
    ),
    "no releases",
  );
}

/** The autoscaler's decisions, newest first, each with its reason and what it did. */
export function scalingRows(scaling: ScalingView): Html {
  return html`${scaling.panic ? html`<p class="error">In panic mode since ${scaling.panic_since}</p>` : ""}
${table(
  ["decided", "machines", "reason", "actions"],
  scaling.decisions.map(
    (d) => html`<tr class="decision"><td>${d.decided_at}</td><td>${d.current} → ${d.desired}</td>
<td class="reason">${d.reason}</td><td>${d.actions.map(
      (a) =>
        html`<div>${a.kind} <code>${a.machine_id}</code>: ${a.outcome}${a.message ? html` (${a.message})` : ""}</div>`,
    )}</td></tr>`,
  ),
  "no autoscaler decisions yet",
)}`;
}

export function volumeRows(volumes: VolumeView[]): Html {
  return table(
    ["volume", "name", "state", "size", "region", "attached to"],
    volumes.map(
      (
        v,
      ) => html`<tr><td><code>${v.id}</code></td><td>${v.name}</td><td>${v.state}</td><td>${v.size_gb} GB</td>
<td>${v.region}</td><td>${v.attached_machine_id ?? ""}</td></tr>`,
    ),
    "no volumes",
  );
}

/** Everything the app page shows when it is first served. */
export interface AppOverview {
  app: AppView;
  machines: MachineView[];
  releases: ReleaseView[];
  scaling: ScalingView;
  volumes: VolumeView[];
  clusters: PgClusterView[];
  /** The event feed's position before these were read: the script follows the feed from there. */
  since?: string | undefined;
}

function part(id: string, title: string, content: HtmlValue): Html {
  return html`<section><h2>${title}</h2><div id="${id}">${content}</div></section>`;
}

/** An app's page: machines, releases, decisions and volumes kept live by the script; its logs tail. */
export function appPage(o: AppOverview): Html {
  const name = o.app.name;
  return layout(
    name,
    html`<h1>${name} <span class="live" id="live-status">connecting</span></h1>
<p>Org ${o.app.organization.slug} · ${o.app.status}</p>
${part("machines", "Machines", machineRows(o.machines))}
${part("scaling", "Autoscaler decisions", scalingRows(o.scaling))}
${part("releases", "Releases", releaseRows(o.releases))}
${part("volumes", "Volumes", volumeRows(o.volumes))}
${part("clusters", "Postgres clusters attached", clustersTable(o.clusters))}
<section><h2>Logs</h2><div id="logs" aria-live="polite"></div></section>`,
    { signedIn: true, appName: name, since: o.since },
  );
}
