// What Debian's podman 4.3 `kube play` can run, made from rendered Kubernetes objects (pure, no I/O).
// podman plays Pods, Deployments, ConfigMaps (env and volumes) and PVCs. It does not play StatefulSets,
// DaemonSets or Services ("no supported kube kind"), its Secret support is broken (a Secret volume
// panics podman 4.3.1; `secretKeyRef` env reads only a podman secret holding JSON), it does not expand
// `$(VAR)` in env values, has no `spec.nodeName` fieldRef, lets `envFrom` win over `env`, and shares an
// emptyDir among all pods by its name. The stand-ins, as deploy/k8s/README.md ("Run it with podman")
// lists them:
// - every workload (Deployment, StatefulSet, DaemonSet) is planned with its replicas (a DaemonSet: one,
//   this machine being its one node) and played as that many Pods, each with its own emptyDirs
//   (podsOf); a StatefulSet's volumeClaimTemplates become one PVC each; a DaemonSet the caller runs
//   as a host process (the host agent) is not played;
// - a Secret becomes a ConfigMap of the same name (for volumes) and a podman secret holding JSON (for env);
// - Services, PodDisruptionBudgets, NetworkPolicies, RBAC and the Namespace are left out; Service DNS
//   names are `hostAliases` to the pods' addresses, given by the caller once those pods run.

/** A rendered Kubernetes object: only the fields read here are typed. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

interface PodTemplate {
  metadata?: Record<string, unknown>;
  spec: PodSpec;
}

export interface PodSpec {
  hostNetwork?: boolean;
  hostAliases?: { ip: string; hostnames: string[] }[];
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  [k: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  env?: { name: string; value?: string; valueFrom?: Record<string, unknown> }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path?: string; port: number | string } };
  [k: string]: unknown;
}

interface Volume {
  name: string;
  secret?: { secretName: string; items?: unknown[]; defaultMode?: number; optional?: boolean };
  configMap?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Kinds podman does not run, left out of the play. */
export const LEFT_OUT_KINDS: ReadonlySet<string> = new Set([
  "Namespace",
  "Service",
  "PodDisruptionBudget",
  "NetworkPolicy",
  "ServiceAccount",
  "Role",
  "RoleBinding",
  "ClusterRole",
  "ClusterRoleBinding",
]);

/** A workload to play: a Deployment podman runs, from a Deployment, StatefulSet or DaemonSet. */
export interface PlayWorkload {
  /** The object's name; its pods are `<name>-pod-<i>`. */
  name: string;
  /** The kind it was rendered as. */
  from: "Deployment" | "StatefulSet" | "DaemonSet";
  replicas: number;
  deployment: KubeObject;
}

/** A podman secret to create before the play: the JSON podman's `secretKeyRef` reads (values base64). */
export interface PodmanSecret {
  name: string;
  json: string;
}

export interface PodmanPlan {
  workloads: PlayWorkload[];
  /** ConfigMaps, the Secrets among them as ConfigMaps of the same name. */
  configMaps: KubeObject[];
  secrets: PodmanSecret[];
  /** PersistentVolumeClaims standing in for StatefulSets' volumeClaimTemplates (podman named volumes). */
  claims: KubeObject[];
  /** What was left out and why, for the log. */
  leftOut: string[];
}

/** Names of DaemonSets to leave out of the play (the caller runs them as host processes). */
export interface PlanOptions {
  hostProcesses?: readonly string[];
}

function template(obj: KubeObject): PodTemplate {
  const spec = obj.spec as { template?: PodTemplate } | undefined;
  if (!spec?.template?.spec) throw new Error(`${obj.kind} ${obj.metadata.name} has no pod template`);
  return spec.template;
}

/** The Secret's data as strings (data is base64, stringData plain). */
function secretData(secret: KubeObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((secret.data as Record<string, string> | undefined) ?? {})) {
    out[k] = Buffer.from(v, "base64").toString("utf8");
  }
  for (const [k, v] of Object.entries((secret.stringData as Record<string, string> | undefined) ?? {})) {
    out[k] = v;
  }
  return out;
}

/** Secret volumes become ConfigMap volumes of the same name, items and mode. */
function withoutSecretVolumes(spec: PodSpec): PodSpec {
  const volumes = spec.volumes?.map((v) => {
    if (!v.secret) return v;
    const { secret, ...rest } = v;
    return {
      ...rest,
      configMap: {
        name: secret.secretName,
        ...(secret.items ? { items: secret.items } : {}),
        ...(secret.defaultMode === undefined ? {} : { defaultMode: secret.defaultMode }),
        ...(secret.optional === undefined ? {} : { optional: secret.optional }),
      },
    };
  });
  return volumes ? { ...spec, volumes } : spec;
}

function asDeployment(obj: KubeObject, replicas: number, spec: PodSpec): KubeObject {
  const t = template(obj);
  const selector = (obj.spec as { selector?: unknown }).selector;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: obj.metadata.name, ...(obj.metadata.labels ? { labels: obj.metadata.labels } : {}) },
    spec: { replicas, selector, template: { ...t, spec } },
  };
}

/** Turns rendered objects into what podman 4.3 plays; throws on a kind it does not know what to do with. */
export function podmanPlan(objects: readonly KubeObject[], options: PlanOptions = {}): PodmanPlan {
  const hostProcesses = new Set(options.hostProcesses ?? []);
  const plan: PodmanPlan = { workloads: [], configMaps: [], secrets: [], claims: [], leftOut: [] };
  for (const obj of objects) {
    const name = obj.metadata.name;
    switch (obj.kind) {
      case "ConfigMap":
        plan.configMaps.push(obj);
        break;
      case "Secret": {
        const data = secretData(obj);
        plan.configMaps.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });
        const b64 = Object.fromEntries(
          Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
        );
        plan.secrets.push({ name, json: JSON.stringify(b64) });
        break;
      }
      case "Deployment": {
        const replicas = ((obj.spec as { replicas?: number }).replicas ?? 1) as number;
        const spec = withoutSecretVolumes(template(obj).spec);
        plan.workloads.push({
          name,
          from: "Deployment",
          replicas,
          deployment: asDeployment(obj, replicas, spec),
        });
        break;
      }
      case "StatefulSet": {
        const s = obj.spec as { replicas?: number; volumeClaimTemplates?: { metadata: { name: string } }[] };
        const replicas = s.replicas ?? 1;
        const base = withoutSecretVolumes(template(obj).spec);
        // Each claim template becomes one PVC (a podman named volume, which podman fills from the image's
        // folder with its owner, as a fresh volume is on Kubernetes with fsGroup): one per StatefulSet,
        // so the overlay plays stateful sets with one replica.
        const claims = (s.volumeClaimTemplates ?? []).map((c) => ({
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          metadata: { name: `${c.metadata.name}-${name}` },
          spec: (c as { spec?: unknown }).spec,
        }));
        const claimVolumes = (s.volumeClaimTemplates ?? []).map((c) => ({
          name: c.metadata.name,
          persistentVolumeClaim: { claimName: `${c.metadata.name}-${name}` },
        }));
        const spec = { ...base, volumes: [...(base.volumes ?? []), ...claimVolumes] };
        plan.claims.push(...claims);
        plan.workloads.push({
          name,
          from: "StatefulSet",
          replicas,
          deployment: asDeployment(obj, replicas, spec),
        });
        break;
      }
      case "DaemonSet": {
        if (hostProcesses.has(name)) {
          plan.leftOut.push(`DaemonSet ${name}: run beside the play as a host process`);
          break;
        }
        const spec = withoutSecretVolumes(template(obj).spec);
        plan.workloads.push({ name, from: "DaemonSet", replicas: 1, deployment: asDeployment(obj, 1, spec) });
        break;
      }
      default:
        if (!LEFT_OUT_KINDS.has(obj.kind)) {
          throw new Error(
            `${obj.kind} ${name}: podman kube play cannot run it and podman-play.ts has no stand-in`,
          );
        }
        plan.leftOut.push(`${obj.kind} ${name}: not run by podman`);
    }
  }
  return plan;
}

/** The workload with `hostAliases` added to its pod template: Service names to pod addresses. */
export function withHostAliases(w: PlayWorkload, aliases: Record<string, string>): KubeObject {
  const byIp = new Map<string, string[]>();
  for (const [host, ip] of Object.entries(aliases)) byIp.set(ip, [...(byIp.get(ip) ?? []), host]);
  const t = template(w.deployment);
  const hostAliases = [...byIp].map(([ip, hostnames]) => ({ ip, hostnames }));
  return {
    ...w.deployment,
    spec: {
      ...(w.deployment.spec as object),
      template: { ...t, spec: { ...t.spec, hostAliases: [...(t.spec.hostAliases ?? []), ...hostAliases] } },
    },
  };
}

/**
 * The workload's replicas as Pods `<name>-pod-<i>`, as podman would name a Deployment's, each with its
 * own emptyDirs: podman 4.3 makes an emptyDir (of any medium) a named volume called after the volume,
 * which every pod with a volume of that name (`data`, `tmp`) would share, so each is renamed
 * `<pod>-<volume>` here.
 */
export function podsOf(w: PlayWorkload, aliases: Record<string, string> = {}): KubeObject[] {
  const t = template(withHostAliases(w, aliases));
  return podNames(w).map((pod) => {
    const own = new Set((t.spec.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name));
    const rename = (name: string) => (own.has(name) ? `${pod}-${name}` : name);
    const mounts = (c: Container) => ({
      ...c,
      ...(Array.isArray(c.volumeMounts)
        ? {
            volumeMounts: (c.volumeMounts as { name: string }[]).map((m) => ({ ...m, name: rename(m.name) })),
          }
        : {}),
    });
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: pod,
        ...(t.metadata?.labels ? { labels: t.metadata.labels as Record<string, string> } : {}),
      },
      spec: {
        ...t.spec,
        containers: t.spec.containers.map(mounts),
        ...(t.spec.initContainers ? { initContainers: t.spec.initContainers.map(mounts) } : {}),
        ...(t.spec.volumes ? { volumes: t.spec.volumes.map((v) => ({ ...v, name: rename(v.name) })) } : {}),
      },
    };
  });
}

/** The pod names podman gives a played Deployment's replicas. */
export function podNames(w: PlayWorkload): string[] {
  return Array.from({ length: w.replicas }, (_, i) => `${w.name}-pod-${i}`);
}

/** Where a workload's pods say they are ready: its first container's readinessProbe httpGet (a named port resolved). */
export function readinessOf(w: PlayWorkload): { path: string; port: number } | undefined {
  const [c] = template(w.deployment).spec.containers;
  const get = c?.readinessProbe?.httpGet;
  if (!c || !get) return undefined;
  const port =
    typeof get.port === "number" ? get.port : c.ports?.find((p) => p.name === get.port)?.containerPort;
  if (port === undefined)
    throw new Error(`${w.name}: readiness port ${String(get.port)} is not a container port`);
  return { path: get.path ?? "/", port };
}

/**
 * The object as written for `podman kube play`: without container ports, which podman 4.3 publishes
 * on the host's port of the same number (two replicas would clash, and a pod's ports are reached at
 * its own address anyway), and without liveness probes (podman makes them healthchecks run by systemd
 * timers, which this machine has not, and cannot resolve a named port in them). Readiness ports are
 * read from the workload before this; readiness and startup probes podman 4.3 ignores.
 */
export function forPlay(obj: KubeObject): KubeObject {
  if (obj.kind !== "Pod") return obj;
  const spec = obj.spec as PodSpec;
  const strip = (c: Container) => {
    const { ports: _ports, livenessProbe: _liveness, ...rest } = c;
    return rest as Container;
  };
  return { ...obj, spec: { ...spec, containers: spec.containers.map(strip) } };
}

/**
 * The Pod with each container's `envFrom` ConfigMaps written out as env entries before its own:
 * podman 4.3 lets an `envFrom` value win over the container's own `env` of the same name, the other
 * way round from Kubernetes. On the host's network (`hostNetwork`), where podman writes no
 * `hostAliases`, a Service name in a URL (`nats://nats:4222`) is replaced by its pod's address.
 */
export function inlineEnvFrom(
  pod: KubeObject,
  configMaps: readonly KubeObject[],
  aliases: Record<string, string> = {},
): KubeObject {
  const spec = pod.spec as PodSpec;
  const data = new Map(configMaps.map((cm) => [cm.metadata.name, (cm.data ?? {}) as Record<string, string>]));
  const resolve = (value: string) =>
    spec.hostNetwork === true
      ? Object.entries(aliases).reduce((v, [host, ip]) => v.split(`://${host}:`).join(`://${ip}:`), value)
      : value;
  const containers = spec.containers.map((c) => {
    const envFrom = (c.envFrom as { configMapRef?: { name: string } }[] | undefined) ?? [];
    const own = c.env ?? [];
    const ownNames = new Set(own.map((e) => e.name));
    const fromMaps = envFrom.flatMap((ef) => {
      if (!ef.configMapRef) return [];
      const values = data.get(ef.configMapRef.name);
      if (!values)
        throw new Error(`${pod.metadata.name}: envFrom ConfigMap ${ef.configMapRef.name} is not rendered`);
      return Object.entries(values).map(([name, value]) => ({ name, value }));
    });
    const rest = envFrom.filter((ef) => !ef.configMapRef);
    const env = [...fromMaps.filter((e) => !ownNames.has(e.name)), ...own].map((e) =>
      e.value === undefined ? e : { ...e, value: resolve(e.value) },
    );
    const { envFrom: _envFrom, ...container } = c;
    return { ...container, env, ...(rest.length > 0 ? { envFrom: rest } : {}) } as Container;
  });
  return { ...pod, spec: { ...spec, containers } };
}
