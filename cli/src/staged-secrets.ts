import type { ApiClient } from "./api.js";

/**
 * Deploys the app's staged secrets (`hangar secrets set --stage`) as part of a `hangar deploy`, before
 * its release: an image deploy's machines start with them, an edge app's code gets them as `env`.
 */
export async function deployStagedSecrets(
  api: ApiClient,
  app: string,
  progress: (text: string) => void,
): Promise<void> {
  const { secrets } = await api.listSecrets(app);
  const staged = secrets.filter((s) => s.status !== "deployed").map((s) => s.name);
  if (staged.length === 0) return;
  await api.updateSecrets(app, {});
  progress(`Deployed the staged secrets ${staged.join(", ")}\n`);
}
