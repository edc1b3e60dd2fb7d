import { hostAgentTemplate, type NatsUserSpec, permissionsOf, SERVICE_USERS } from "./nats-permissions.js";

/** Where the generated part of docs/nats-security.md begins and ends. */
export const DOC_BEGIN =
  "<!-- nats-permissions:begin (generated from libs/service/src/nats-permissions.ts) -->";
export const DOC_END = "<!-- nats-permissions:end -->";

const code = (s: string) => `\`${s}\``;
const list = (items: string[]) => (items.length === 0 ? "-" : items.map(code).join(", "));

function grants(spec: NatsUserSpec): string[] {
  return [
    list(
      spec.streams
        .filter((s) => s.read)
        .map((s) => (s.readOnly === undefined ? s.stream : `${s.stream} (${s.readOnly} only)`)),
    ),
    list(spec.streams.flatMap((s) => s.append)),
    list(spec.streams.filter((s) => !s.read && s.append.length === 0).map((s) => s.stream)),
    list([
      ...spec.kv.map((b) => `KV ${b.bucket}${b.write ? " (rw)" : ""}`),
      ...spec.objects.map((b) => `Obj ${b.bucket}${b.write ? " (rw)" : ""}`),
    ]),
    list(spec.publish),
    list(spec.subscribe),
    list(spec.serves),
  ];
}

/** The permission table as markdown: a summary per user, then each user's exact server permissions. */
export function permissionsMarkdown(): string {
  const users = [...SERVICE_USERS, hostAgentTemplate("<host>")];
  const lines = [
    DOC_BEGIN,
    "",
    "| user | who | reads streams | appends to | only ensures | buckets | publishes | subscribes | serves |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...users.map((u) => `| ${code(u.user)} | ${u.role} | ${grants(u).join(" | ")} |`),
    `| ${code("operator")} | npm start's set-up, tests, operators | every subject | | | | | | |`,
    "",
    "Exact permissions in the server configuration (`allow` lists; anything else is refused):",
    "",
  ];
  for (const u of users) {
    const p = permissionsOf(u);
    lines.push(
      `- ${code(u.user)}${p.allowResponses ? " (`allow_responses: true`)" : ""}`,
      `  - publish: ${list(p.publish)}`,
      ...(p.denyPublish.length > 0 ? [`  - publish denied: ${list(p.denyPublish)}`] : []),
      `  - subscribe: ${list(p.subscribe)}`,
    );
  }
  lines.push("", DOC_END);
  return lines.join("\n");
}

/** `doc` with its generated block replaced by the current table. */
export function withPermissionsMarkdown(doc: string): string {
  const begin = doc.indexOf(DOC_BEGIN);
  const end = doc.indexOf(DOC_END);
  if (begin < 0 || end < begin) throw new Error("the document has no generated permissions block");
  return doc.slice(0, begin) + permissionsMarkdown() + doc.slice(end + DOC_END.length);
}
