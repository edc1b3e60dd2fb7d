// `pnpm k8s`: writes the generated Kubernetes files (scripts/k8s-manifests.ts): the Hangar services'
// workloads, Services, PodDisruptionBudgets and NetworkPolicies in deploy/k8s/base/services/, and the
// NATS users' template deploy/k8s/base/nats/auth/authorization.conf. Commit the result.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { k8sFiles } from "./k8s-manifests.js";

const root = fileURLToPath(new URL("..", import.meta.url));
for (const [file, content] of Object.entries(k8sFiles())) {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  process.stdout.write(`wrote ${relative(root, file)}\n`);
}
