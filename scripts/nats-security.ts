// NATS security from the permission table (libs/service/src/nats-permissions.ts):
//   nats-security.ts docs                      rewrites the generated table in docs/nats-security.md
//   nats-security.ts credentials <dir> <host>… makes (or keeps) a seed per user in <dir> and writes
//                                              the k8s Secret nats-auth's files: authorization.conf
//                                              (the users) and routes.conf (a new route password)
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hostIdFromName, natsUsers, writeNatsCredentials } from "@hangar/service";
import { NATS_SECURITY_DOC, natsSecurityDoc } from "./nats-security-doc.js";

const [command, dir, ...hosts] = process.argv.slice(2);
if (command === "docs") {
  const file = NATS_SECURITY_DOC;
  await writeFile(file, natsSecurityDoc(await readFile(file, "utf8")));
  process.stdout.write(`rewrote the permission table in ${file}\n`);
} else if (command === "credentials" && dir !== undefined && hosts.length > 0) {
  // Node names (a host agent's id is made from its node's name, as the DaemonSet's agents make it).
  const creds = await writeNatsCredentials(dir, natsUsers(hosts.map(hostIdFromName)));
  await writeFile(join(dir, "authorization.conf"), creds.authorization, { mode: 0o600 });
  await writeFile(join(dir, "routes.conf"), routesConf(randomBytes(24).toString("base64url")), {
    mode: 0o600,
  });
  process.stdout.write(`seeds, authorization.conf and routes.conf in ${dir}\n`);
} else {
  process.stderr.write("usage: nats-security.ts docs | credentials <dir> <node name or host id>...\n");
  process.exit(2);
}

/** The cluster block's route authorization and routes of deploy/k8s's 3-pod StatefulSet. */
function routesConf(password: string): string {
  const pods = [0, 1, 2].map((i) => `  nats://route:${password}@nats-${i}.nats-headless:6222`);
  return `authorization {\n  user: route\n  password: "${password}"\n}\nroutes: [\n${pods.join("\n")}\n]\n`;
}
