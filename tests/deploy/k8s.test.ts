// Static checks of the Kubernetes manifests in deploy/k8s. No cluster is available here or in CI, so
// nothing is applied: the files are parsed and cross-checked (kustomization entries, workloads, Service
// selectors and ports, the NATS config against its StatefulSet, the collector's pipelines). Where kubectl
// is installed, the base and the overlay are also rendered with `kubectl kustomize` and checked again.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { dashboards, PROMETHEUS, TEMPO } from "../../scripts/grafana-dashboards.js";

const K8S = fileURLToPath(new URL("../../deploy/k8s/", import.meta.url));
const BASE = join(K8S, "base");
const LOCAL = join(K8S, "overlays", "local");

type Labels = Record<string, string>;
interface Meta {
  name: string;
  namespace?: string;
  labels?: Labels;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  exec?: { command: string[] };
  tcpSocket?: { port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface ClaimTemplate {
  metadata: { name: string };
  spec: { resources: { requests: { storage: string } } };
}
interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    serviceName?: string;
    selector: { matchLabels: Labels };
    template: {
      metadata: { labels: Labels };
      spec: {
        containers: Container[];
        affinity?: { podAntiAffinity?: unknown };
        volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
      };
    };
    volumeClaimTemplates?: ClaimTemplate[];
  };
}
interface Service extends K8sObject {
  spec: {
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    selector?: Labels;
    ports: { name?: string; port: number; targetPort?: string | number }[];
  };
}
interface ConfigMap extends K8sObject {
  data: Record<string, string>;
}
interface Pdb extends K8sObject {
  spec: { maxUnavailable?: number | string; selector: { matchLabels: Labels } };
}
interface Generator {
  name: string;
  behavior?: string;
  literals?: string[];
  files?: string[];
  envs?: string[];
}
interface Patch {
  path?: string;
  patch?: string;
  target?: { kind?: string; name?: string; labelSelector?: string };
}
interface Kustomization {
  namespace?: string;
  resources?: string[];
  patches?: Patch[];
  labels?: { pairs: Labels; includeSelectors?: boolean; includeTemplates?: boolean }[];
  commonLabels?: Labels;
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}

// ---------------------------------------------------------------------------------------------------
// Reading the files

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

interface ParsedFile {
  file: string;
  errors: string[];
  docs: unknown[];
}

function parseFile(file: string): ParsedFile {
  const errors: string[] = [];
  const docs: unknown[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    errors.push(...doc.errors.map((e) => e.message));
    const value: unknown = doc.toJS();
    if (value != null) docs.push(value);
  }
  return { file, errors, docs };
}

const files = yamlFiles(K8S).map(parseFile);
const rel = (file: string) => relative(K8S, file);
const isKustomization = (file: string) => basename(file) === "kustomization.yaml";

function kustomization(dir: string): Kustomization {
  return parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as Kustomization;
}

/**
 * The manifests a kustomization includes, following folders, as written (generators not expanded).
 * Entries that do not exist are left to the test that checks them.
 */
function manifests(dir: string): { file: string; object: K8sObject }[] {
  return (kustomization(dir).resources ?? []).flatMap((entry) => {
    const path = resolve(dir, entry);
    if (!existsSync(path)) return [];
    if (statSync(path).isDirectory()) return manifests(path);
    return parseFile(path).docs.map((object) => ({ file: path, object: object as K8sObject }));
  });
}

/** Generators of a kustomization and of the kustomizations it includes. */
function generators(dir: string, kind: "configMapGenerator" | "secretGenerator"): Generator[] {
  const k = kustomization(dir);
  const nested = (k.resources ?? [])
    .map((entry) => resolve(dir, entry))
    .filter((path) => existsSync(path) && statSync(path).isDirectory())
    .flatMap((path) => generators(path, kind));
  return [...(k[kind] ?? []), ...nested];
}

function literal(generator: Generator | undefined, key: string): string | undefined {
  const entry = generator?.literals?.find((l) => l.startsWith(`${key}=`));
  return entry?.slice(key.length + 1);
}

const baseObjects = manifests(BASE).map((m) => m.object);
const baseConfigMapGenerators = generators(BASE, "configMapGenerator");
const baseSecretGenerators = generators(BASE, "secretGenerator");

const ofKind = <T extends K8sObject>(objects: K8sObject[], kind: string) =>
  objects.filter((o) => o.kind === kind) as T[];
const workloadsOf = (objects: K8sObject[]) =>
  objects.filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind)) as Workload[];

function named<T extends K8sObject>(objects: K8sObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found as T;
}

// ---------------------------------------------------------------------------------------------------
// Units

/** A Kubernetes quantity ("500m", "2", "512Mi", "10Gi") as a number of units (cores, bytes). */
function quantity(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m?.[1]) throw new Error(`not a quantity: ${q}`);
  const factor: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(m[1]) * (m[2] ? (factor[m[2]] ?? Number.NaN) : 1);
}

/** A size as nats-server reads it: K, M, G, T are powers of 1000; KB, KiB, MB... powers of 1024. */
function natsSize(s: string): number {
  const m = /^(\d+)\s*([kmgt])?(b|ib|i)?$/i.exec(s.trim());
  if (!m?.[1]) throw new Error(`not a nats-server size: ${s}`);
  const power = m[2] ? "kmgt".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Number(m[1]) * (m[3] ? 1024 : 1000) ** power;
}

// ---------------------------------------------------------------------------------------------------
// nats.conf, read just enough to check it

/** Drops `# ...` and `// ...` comments (a `//` inside a URL follows a colon, not a space). */
function stripComments(conf: string): string {
  return conf.replace(/(^|\s)(#|\/\/).*$/gm, "$1");
}

/** The body of `name { ... }` at any depth. */
function block(conf: string, name: string): string {
  const start = new RegExp(`(^|\\s)${name}\\s*[:=]?\\s*\\{`, "m").exec(conf);
  if (!start) throw new Error(`no ${name} block`);
  let depth = 0;
  const open = start.index + start[0].length - 1;
  for (let i = open; i < conf.length; i++) {
    if (conf[i] === "{") depth++;
    if (conf[i] === "}" && --depth === 0) return conf.slice(open + 1, i);
  }
  throw new Error(`unclosed ${name} block`);
}

function setting(conf: string, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*[:=]\\s*(\\S+)`, "m").exec(conf)?.[1];
}

/** The files a config block includes, in order. */
function includes(conf: string): string[] {
  // Only the block's own level: nested blocks' includes are theirs.
  let depth = 0;
  let own = "";
  for (const c of conf) {
    if (c === "{") depth++;
    else if (c === "}") depth--;
    else if (depth === 0) own += c;
  }
  return [...own.matchAll(/^\s*include\s+(\S+)/gm)].map((m) => m[1] as string);
}

/** A file of the nats-auth Secret as the base has it (placeholders an overlay replaces). */
function authFile(name: string): string {
  return readFileSync(join(BASE, "nats", "auth", name), "utf8");
}

function routes(cluster: string): string[] {
  const list = /routes\s*[:=]?\s*\[([^\]]*)\]/.exec(cluster)?.[1] ?? "";
  return list.split(/[\s,]+/).filter(Boolean);
}

// ---------------------------------------------------------------------------------------------------
// Checks shared by the files as written and the rendered output

function checkWorkloads(objects: K8sObject[]) {
  const workloads = workloadsOf(objects);
  expect(workloads.length).toBeGreaterThan(0);
  for (const w of workloads) {
    for (const c of w.spec.template.spec.containers) {
      const where = `${w.kind} ${w.metadata.name}, container ${c.name}`;
      const { requests = {}, limits = {} } = c.resources ?? {};
      for (const resource of ["cpu", "memory"]) {
        const request = requests[resource];
        const limit = limits[resource];
        expect(request, `${where}: requests.${resource}`).toBeDefined();
        expect(limit, `${where}: limits.${resource}`).toBeDefined();
        if (request && limit)
          expect(quantity(limit), `${where}: ${resource}`).toBeGreaterThanOrEqual(quantity(request));
      }
      expect(c.readinessProbe, `${where}: readinessProbe`).toBeDefined();
      expect(c.livenessProbe, `${where}: livenessProbe`).toBeDefined();
      const portNames = (c.ports ?? []).map((p) => p.name);
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (typeof port === "string") expect(portNames, `${where}: probe port`).toContain(port);
      }
      // A version in the tag, never latest.
      expect(c.image, `${where}: image`).toMatch(/^[^:@]+:(?!latest$)[\w.-]*\d[\w.-]*$/);
    }
    for (const [key, value] of Object.entries(w.spec.selector.matchLabels)) {
      expect(w.spec.template.metadata.labels[key], `${w.kind} ${w.metadata.name}: selector ${key}`).toBe(
        value,
      );
    }
  }
}

const selects = (selector: Labels, labels: Labels) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

function checkServices(objects: K8sObject[]) {
  const workloads = workloadsOf(objects);
  const services = ofKind<Service>(objects, "Service");
  expect(services.length).toBeGreaterThan(0);
  for (const s of services) {
    const selector = s.spec.selector ?? {};
    expect(Object.keys(selector), `Service ${s.metadata.name} has a selector`).not.toHaveLength(0);
    const targets = workloads.filter((w) => selects(selector, w.spec.template.metadata.labels));
    expect(
      targets.map((w) => w.metadata.name),
      `Service ${s.metadata.name} selects a pod template`,
    ).not.toHaveLength(0);
    for (const port of s.spec.ports) {
      const target = port.targetPort ?? port.port;
      const declared = targets.some((w) =>
        w.spec.template.spec.containers.some((c) =>
          (c.ports ?? []).some((p) => p.name === target || p.containerPort === target),
        ),
      );
      expect(declared, `Service ${s.metadata.name} port ${port.name ?? port.port} -> ${target}`).toBe(true);
    }
  }
  for (const w of workloads.filter((w) => w.kind === "StatefulSet")) {
    const governing = services.find((s) => s.metadata.name === w.spec.serviceName);
    expect(governing, `StatefulSet ${w.metadata.name}: serviceName ${w.spec.serviceName}`).toBeDefined();
    if (governing) expect(selects(governing.spec.selector ?? {}, w.spec.template.metadata.labels)).toBe(true);
  }
}

/** ConfigMaps and Secrets referred to by workloads exist (as objects or generators). */
function checkReferences(objects: K8sObject[], configMaps: string[], secrets: string[]) {
  for (const w of workloadsOf(objects)) {
    const spec = w.spec.template.spec;
    const where = `${w.kind} ${w.metadata.name}`;
    for (const v of spec.volumes ?? []) {
      if (v.configMap) expect(configMaps, `${where}: volume ${v.name}`).toContain(v.configMap.name);
      if (v.secret) expect(secrets, `${where}: volume ${v.name}`).toContain(v.secret.secretName);
    }
    const volumeNames = [
      ...(spec.volumes ?? []).map((v) => v.name),
      ...(w.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name),
    ];
    for (const c of spec.containers) {
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef) expect(configMaps, `${where}: envFrom`).toContain(from.configMapRef.name);
        if (from.secretRef) expect(secrets, `${where}: envFrom`).toContain(from.secretRef.name);
      }
      for (const mount of c.volumeMounts ?? []) expect(volumeNames, `${where}: mount`).toContain(mount.name);
    }
  }
}

function natsStatefulSet(objects: K8sObject[]) {
  const sts = named<Workload>(objects, "StatefulSet", "nats");
  const container = sts.spec.template.spec.containers.find((c) => c.name === "nats");
  if (!container) throw new Error("no nats container");
  const env = (name: string) => container.env?.find((e) => e.name === name);
  return { sts, container, env };
}

/** JetStream's max_file_store (from the env the config names) is below the size of the volume. */
function checkFileStoreFitsVolume(objects: K8sObject[]) {
  const { sts, env } = natsStatefulSet(objects);
  const conf = stripComments(named<ConfigMap>(objects, "ConfigMap", "nats-config").data["nats.conf"] ?? "");
  const maxFileStore = setting(block(conf, "jetstream"), "max_file_store") ?? "";
  const value = maxFileStore.startsWith("$") ? env(maxFileStore.slice(1))?.value : maxFileStore;
  expect(value, `max_file_store ${maxFileStore}`).toBeDefined();
  const volume = sts.spec.volumeClaimTemplates?.[0]?.spec.resources.requests.storage ?? "0";
  expect(natsSize(value ?? "")).toBeLessThan(quantity(volume));
  expect(natsSize(value ?? "")).toBeGreaterThan(0.5 * quantity(volume));
}

// ---------------------------------------------------------------------------------------------------

describe("deploy/k8s files", () => {
  it("parses every YAML file, and every manifest names its apiVersion, kind and name", () => {
    expect(files.length).toBeGreaterThan(10);
    for (const { file, errors, docs } of files) {
      expect(errors, rel(file)).toEqual([]);
      expect(docs.length, `${rel(file)} has a document`).toBeGreaterThan(0);
      if (isKustomization(file)) continue;
      for (const doc of docs as K8sObject[]) {
        expect(doc.apiVersion, rel(file)).toBeTruthy();
        expect(doc.kind, rel(file)).toBeTruthy();
        expect(doc.metadata?.name, rel(file)).toBeTruthy();
      }
    }
  });

  it("lists in each kustomization only files and folders that exist, and every manifest in one", () => {
    const listed = new Set<string>();
    for (const { file, docs } of files.filter((f) => isKustomization(f.file))) {
      const dir = dirname(file);
      const k = docs[0] as Kustomization;
      for (const entry of k.resources ?? []) {
        const path = resolve(dir, entry);
        expect(existsSync(path), `${rel(file)}: ${entry}`).toBe(true);
        if (existsSync(path) && statSync(path).isDirectory()) {
          expect(
            existsSync(join(path, "kustomization.yaml")),
            `${rel(file)}: ${entry}/kustomization.yaml`,
          ).toBe(true);
        }
        listed.add(path);
      }
      for (const patch of k.patches ?? []) {
        expect(patch.path ?? patch.patch, `${rel(file)}: patch`).toBeTruthy();
        if (patch.path)
          expect(existsSync(resolve(dir, patch.path)), `${rel(file)}: ${patch.path}`).toBe(true);
      }
      for (const g of [...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])]) {
        for (const source of [...(g.files ?? []), ...(g.envs ?? [])]) {
          const path = resolve(dir, source.replace(/^[^=]*=/, ""));
          expect(existsSync(path), `${rel(file)}: ${g.name} from ${source}`).toBe(true);
        }
      }
    }
    for (const { file } of files.filter((f) => !isKustomization(f.file))) {
      expect(listed.has(file), `${rel(file)} is listed in a kustomization`).toBe(true);
    }
  });

  it("puts the base in namespace hangar and labels it part-of hangar, outside selectors", () => {
    const k = kustomization(BASE);
    expect(k.namespace).toBe("hangar");
    expect(named(baseObjects, "Namespace", "hangar")).toBeDefined();
    const label = k.labels?.find((l) => l.pairs["app.kubernetes.io/part-of"] === "hangar");
    expect(label).toBeDefined();
    expect(label?.includeTemplates).toBe(true);
    expect(label?.includeSelectors ?? false).toBe(false);
  });

  it("gives every Deployment and StatefulSet container requests, limits, probes and a pinned image", () => {
    checkWorkloads(baseObjects);
  });

  it("has every Service select the pod template of a workload, on ports its containers declare", () => {
    checkServices(baseObjects);
  });

  it("defines every ConfigMap and Secret a workload refers to", () => {
    checkReferences(
      baseObjects,
      [
        ...ofKind(baseObjects, "ConfigMap").map((c) => c.metadata.name),
        ...baseConfigMapGenerators.map((g) => g.name),
      ],
      [
        ...ofKind(baseObjects, "Secret").map((s) => s.metadata.name),
        ...baseSecretGenerators.map((g) => g.name),
      ],
    );
  });
});

describe("NATS", () => {
  const { sts, container, env } = natsStatefulSet(baseObjects);
  const conf = stripComments(
    named<ConfigMap>(baseObjects, "ConfigMap", "nats-config").data["nats.conf"] ?? "",
  );

  it("runs 3 nodes of nats 2.12, spread over nodes, with at most one disrupted at a time", () => {
    expect(sts.spec.replicas).toBe(3);
    expect(container.image).toBe("nats:2.12-alpine");
    expect(sts.spec.template.spec.affinity?.podAntiAffinity).toBeDefined();
    const pdbs = ofKind<Pdb>(baseObjects, "PodDisruptionBudget").filter((p) =>
      selects(p.spec.selector.matchLabels, sts.spec.template.metadata.labels),
    );
    expect(pdbs.map((p) => p.spec.maxUnavailable)).toEqual([1]);
  });

  it("fsyncs every JetStream write, storing on the StatefulSet's volume", () => {
    const jetstream = block(conf, "jetstream");
    expect(setting(jetstream, "sync_interval")).toBe("always");
    const storeDir = setting(jetstream, "store_dir");
    const claims = (sts.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name);
    const mount = container.volumeMounts?.find((m) => m.mountPath === storeDir);
    expect(mount && claims.includes(mount.name), `store_dir ${storeDir} is on a claimed volume`).toBe(true);
  });

  it("routes to each of the 3 pods through the headless Service, with a route password", () => {
    const cluster = block(conf, "cluster");
    const headless = named<Service>(baseObjects, "Service", sts.spec.serviceName ?? "");
    expect(headless.spec.clusterIP).toBe("None");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    const routePort = headless.spec.ports.find((p) => p.name === "cluster")?.port;
    expect(setting(cluster, "listen")).toBe(`0.0.0.0:${routePort}`);
    // Routes and their authorization come from the Secret, included in the cluster block.
    expect(includes(cluster)).toEqual(["../auth/routes.conf"]);
    const routesConf = stripComments(authFile("routes.conf"));
    const auth = block(routesConf, "authorization");
    const user = setting(auth, "user");
    const password = JSON.parse(setting(auth, "password") ?? '""') as string;
    expect(user).toBe("route");
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(routes(routesConf)).toEqual(
      Array.from(
        { length: 3 },
        (_, i) =>
          `nats://${user}:${password}@${sts.metadata.name}-${i}.${headless.metadata.name}:${routePort}`,
      ),
    );
  });

  it("admits only the users of the nats-auth Secret, mounted where nats.conf includes it from", () => {
    const configDir = dirname(container.args?.[container.args.indexOf("--config") + 1] ?? "");
    const mounts = container.volumeMounts ?? [];
    const volumes = sts.spec.template.spec.volumes ?? [];
    const authMount = mounts.find((m) => m.mountPath === resolve(configDir, "../auth"));
    expect(volumes.find((v) => v.name === authMount?.name)?.secret?.secretName).toBe("nats-auth");
    expect(includes(conf)).toEqual(["../auth/authorization.conf"]);
    const generator = baseSecretGenerators.find((g) => g.name === "nats-auth");
    expect(generator?.files?.map((f) => f.split("=")[0]).sort()).toEqual([
      "authorization.conf",
      "routes.conf",
    ]);
    // Users by nkey only: no anonymous fallback, no passwords.
    const users = stripComments(authFile("authorization.conf"));
    expect(users).not.toMatch(/no_auth_user|password|token/);
    expect(users.match(/nkey:\s*"U[A-Z2-7]{55}"/g)?.length).toBeGreaterThan(0);
  });

  it("names each server after its pod", () => {
    expect(setting(conf, "server_name")).toBe("$POD_NAME");
    expect(env("POD_NAME")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
  });

  it("sizes max_file_store from the volume", () => {
    checkFileStoreFitsVolume(baseObjects);
  });

  it("probes readiness on JetStream being enabled, and waits for full health only at start", () => {
    const url = (p: Probe | undefined) => p?.exec?.command.at(-1);
    const monitor = `http://${setting(conf, "http")}`;
    expect(url(container.readinessProbe)).toBe(`${monitor}/healthz?js-enabled-only=true`);
    expect(url(container.livenessProbe)).toBe(`${monitor}/healthz?js-enabled-only=true`);
    expect(url(container.startupProbe)).toBe(`${monitor}/healthz`);
  });

  it("keeps the unauthenticated monitoring port on the pod's loopback", () => {
    expect(setting(conf, "http")).toBe("127.0.0.1:8222");
    expect(setting(conf, "http_port")).toBeUndefined();
    expect(container.ports?.map((p) => p.containerPort)).not.toContain(8222);
    for (const svc of ofKind<Service>(baseObjects, "Service")) {
      expect(
        svc.spec.ports.map((p) => p.port),
        svc.metadata.name,
      ).not.toContain(8222);
    }
  });
});

describe("hangar-config", () => {
  const config = baseConfigMapGenerators.find((g) => g.name === "hangar-config");
  const services = ofKind<Service>(baseObjects, "Service");
  const port = (name: string, p: number) =>
    services.find((s) => s.metadata.name === name && s.spec.ports.some((sp) => sp.port === p));

  it("points HANGAR_NATS_URL at the NATS client Service", () => {
    const url = new URL(literal(config, "HANGAR_NATS_URL") ?? "");
    expect(url.protocol).toBe("nats:");
    expect(port(url.hostname, Number(url.port))?.spec.clusterIP).not.toBe("None");
  });

  it("points OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port", () => {
    const url = new URL(literal(config, "OTEL_EXPORTER_OTLP_ENDPOINT") ?? "");
    expect(url.protocol).toBe("http:");
    expect(url.port).toBe("4318");
    expect(port(url.hostname, 4318)).toBeDefined();
  });

  it("asks for as many stream replicas as there are NATS nodes", () => {
    expect(literal(config, "HANGAR_STREAM_REPLICAS")).toBe("3");
    expect(natsStatefulSet(baseObjects).sts.spec.replicas).toBe(3);
  });

  it("leaves dir: images off (a development feature): no HANGAR_DIR_IMAGE_ROOTS, base or overlay", () => {
    for (const generator of [...baseConfigMapGenerators, ...generators(LOCAL, "configMapGenerator")]) {
      expect(literal(generator, "HANGAR_DIR_IMAGE_ROOTS"), generator.name).toBeUndefined();
    }
  });
});

describe("Postgres", () => {
  const sts = named<Workload>(baseObjects, "StatefulSet", "postgres");
  const container = sts.spec.template.spec.containers[0];

  it("runs one Postgres 16 on a volume, ready when pg_isready says so", () => {
    expect(sts.spec.replicas).toBe(1);
    expect(container?.image).toMatch(/^postgres:16(\.\d+)*(-\w+)?$/);
    expect(container?.readinessProbe?.exec?.command.join(" ")).toContain("pg_isready");
    expect(sts.spec.volumeClaimTemplates).toHaveLength(1);
    expect(named<Service>(baseObjects, "Service", "postgres").spec.ports.map((p) => p.port)).toEqual([5432]);
  });

  it("ships an obvious placeholder password", () => {
    const secret = baseSecretGenerators.find((g) => g.name === "postgres-credentials");
    expect(literal(secret, "POSTGRES_PASSWORD")).toMatch(/CHANGE-?ME/i);
    expect(container?.envFrom?.map((e) => e.secretRef?.name)).toContain("postgres-credentials");
  });
});

describe("OpenTelemetry Collector", () => {
  interface CollectorConfig {
    extensions?: Record<string, unknown>;
    receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } };
    processors: Record<string, unknown>;
    exporters: Record<string, { endpoint?: string; tls?: { insecure?: boolean } }>;
    service: {
      extensions?: string[];
      pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }>;
    };
  }
  const cm = named<ConfigMap>(baseObjects, "ConfigMap", "otel-collector-config");
  const config = parse(cm.data["config.yaml"] ?? "") as CollectorConfig;
  const deployment = named<Workload>(baseObjects, "Deployment", "otel-collector");
  const container = deployment.spec.template.spec.containers[0];
  const containerPorts = (container?.ports ?? []).map((p) => p.containerPort);

  it("uses only components it defines, and defines only components it uses", () => {
    const used = {
      receivers: new Set<string>(),
      processors: new Set<string>(),
      exporters: new Set<string>(),
    };
    for (const pipeline of Object.values(config.service.pipelines)) {
      for (const r of pipeline.receivers) used.receivers.add(r);
      for (const p of pipeline.processors ?? []) used.processors.add(p);
      for (const e of pipeline.exporters) used.exporters.add(e);
    }
    for (const kind of ["receivers", "processors", "exporters"] as const) {
      expect([...used[kind]].sort(), kind).toEqual(Object.keys(config[kind]).sort());
    }
    expect(config.service.extensions ?? []).toEqual(Object.keys(config.extensions ?? {}));
  });

  it("receives OTLP on gRPC 4317 and HTTP 4318 from outside the pod", () => {
    const { grpc, http } = config.receivers.otlp.protocols;
    expect(grpc.endpoint).toBe("0.0.0.0:4317");
    expect(http.endpoint).toBe("0.0.0.0:4318");
    expect(containerPorts).toEqual(expect.arrayContaining([4317, 4318]));
  });

  it("batches traces to Tempo and exposes metrics for Prometheus on 8889", () => {
    expect(config.service.pipelines.traces?.processors).toEqual(["memory_limiter", "batch"]);
    const [tempo] = config.service.pipelines.traces?.exporters ?? [];
    expect(tempo).toMatch(/^otlp(_grpc)?\/tempo$/);
    expect(config.exporters[tempo ?? ""]).toEqual({ endpoint: "tempo:4317", tls: { insecure: true } });
    expect(named<Service>(baseObjects, "Service", "tempo").spec.ports.map((p) => p.port)).toContain(4317);
    expect(config.service.pipelines.metrics?.exporters).toEqual(["prometheus"]);
    expect(config.exporters.prometheus?.endpoint).toBe("0.0.0.0:8889");
    expect(containerPorts).toContain(8889);
    const service = named<Service>(baseObjects, "Service", "otel-collector");
    expect(service.spec.ports.map((p) => p.port).sort()).toEqual([4317, 4318, 8889]);
  });
});

describe("Tempo, Prometheus and Grafana", () => {
  const containerOf = (kind: string, name: string) => {
    const c = named<Workload>(baseObjects, kind, name).spec.template.spec.containers[0];
    if (!c) throw new Error(`no container in ${kind} ${name}`);
    return c;
  };
  const servicePort = (name: string, port: number) =>
    named<Service>(baseObjects, "Service", name).spec.ports.some((p) => p.port === port);

  it("runs Tempo receiving OTLP gRPC on 4317 and answering queries on the port its Service names", () => {
    const tempo = parse(
      named<ConfigMap>(baseObjects, "ConfigMap", "tempo-config").data["tempo.yaml"] ?? "",
    ) as {
      server: { http_listen_port: number };
      distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string } } } } };
      storage: { trace: { local: { path: string }; wal: { path: string } } };
    };
    const ports = (containerOf("StatefulSet", "tempo").ports ?? []).map((p) => p.containerPort);
    expect(ports).toEqual(expect.arrayContaining([tempo.server.http_listen_port, 4317]));
    expect(tempo.distributor.receivers.otlp.protocols.grpc.endpoint).toBe("0.0.0.0:4317");
    expect(servicePort("tempo", tempo.server.http_listen_port)).toBe(true);
    // Blocks and WAL on the StatefulSet's volume.
    const mount = containerOf("StatefulSet", "tempo").volumeMounts?.find((m) => m.name === "data")?.mountPath;
    expect(tempo.storage.trace.local.path.startsWith(`${mount}/`)).toBe(true);
    expect(tempo.storage.trace.wal.path.startsWith(`${mount}/`)).toBe(true);
  });

  it("has Prometheus discover the namespace's annotated pods, with read access to pods only", () => {
    interface ScrapeConfig {
      job_name: string;
      kubernetes_sd_configs?: { role: string; namespaces?: { own_namespace?: boolean } }[];
      relabel_configs?: { source_labels?: string[]; action?: string; regex?: string }[];
    }
    const config = parse(
      named<ConfigMap>(baseObjects, "ConfigMap", "prometheus-config").data["prometheus.yml"] ?? "",
    ) as { scrape_configs: ScrapeConfig[] };
    const pods = config.scrape_configs.find((c) => c.kubernetes_sd_configs?.[0]?.role === "pod");
    expect(pods?.kubernetes_sd_configs?.[0]?.namespaces?.own_namespace).toBe(true);
    expect(pods?.relabel_configs?.[0]).toEqual({
      source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
      action: "keep",
      regex: "true",
    });
    const sts = named<Workload>(baseObjects, "StatefulSet", "prometheus");
    const account = (sts.spec.template.spec as { serviceAccountName?: string }).serviceAccountName;
    expect(named(baseObjects, "ServiceAccount", account ?? "")).toBeDefined();
    const role = named<K8sObject & { rules: { resources: string[]; verbs: string[] }[] }>(
      baseObjects,
      "Role",
      "prometheus",
    );
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }]);
    const binding = named<K8sObject & { roleRef: { name: string }; subjects: { name: string }[] }>(
      baseObjects,
      "RoleBinding",
      "prometheus",
    );
    expect(binding.roleRef.name).toBe("prometheus");
    expect(binding.subjects.map((s) => s.name)).toEqual([account]);
    // The collector (metrics the services send over OTLP) is one of the pods it keeps.
    const collector = named<Workload>(baseObjects, "Deployment", "otel-collector").spec.template.metadata as {
      annotations?: Record<string, string>;
    };
    expect(collector.annotations?.["prometheus.io/scrape"]).toBe("true");
    expect(servicePort("prometheus", 9090)).toBe(true);
  });

  it("lets the services be scraped at their pod's IP (HANGAR_BIND_HOST=0.0.0.0 in hangar-config)", () => {
    const config = baseConfigMapGenerators.find((g) => g.name === "hangar-config");
    expect(literal(config, "HANGAR_BIND_HOST")).toBe("0.0.0.0");
  });

  it("provisions Grafana's Prometheus and Tempo data sources under the uids the dashboards use, at their Services", () => {
    const provisioning = named<ConfigMap>(baseObjects, "ConfigMap", "grafana-provisioning");
    const { datasources } = parse(provisioning.data["datasources.yaml"] ?? "") as {
      datasources: { uid: string; type: string; url: string }[];
    };
    expect(datasources.map((d) => [d.type, d.uid]).sort()).toEqual([
      [PROMETHEUS.type, PROMETHEUS.uid],
      [TEMPO.type, TEMPO.uid],
    ]);
    for (const d of datasources) {
      const url = new URL(d.url);
      expect(servicePort(url.hostname, Number(url.port)), d.url).toBe(true);
    }
    // Every data source a dashboard names is provisioned.
    const named_ = new Set(
      Object.values(dashboards()).flatMap((d) =>
        (d.panels ?? []).flatMap((p) => (p.datasource?.uid ? [p.datasource.uid] : [])),
      ),
    );
    expect([...named_].sort()).toEqual(datasources.map((d) => d.uid).sort());
  });

  it("provisions every generated dashboard from a ConfigMap mounted where the provider reads", () => {
    const generator = generators(join(BASE, "grafana"), "configMapGenerator").find(
      (g) => g.name === "grafana-dashboards",
    );
    expect(generator?.files?.map((f) => basename(f)).sort()).toEqual(Object.keys(dashboards()).sort());
    const provisioning = named<ConfigMap>(baseObjects, "ConfigMap", "grafana-provisioning");
    const { providers } = parse(provisioning.data["dashboards.yaml"] ?? "") as {
      providers: { type: string; options: { path: string } }[];
    };
    const grafana = named<Workload>(baseObjects, "Deployment", "grafana").spec.template.spec;
    const volume = grafana.volumes?.find((v) => v.configMap?.name === "grafana-dashboards");
    const mount = grafana.containers[0]?.volumeMounts?.find((m) => m.name === volume?.name);
    expect(providers.map((p) => [p.type, p.options.path])).toEqual([["file", mount?.mountPath]]);
    // The provisioning files land in the folders Grafana reads them from.
    const prov = grafana.volumes?.find((v) => v.configMap?.name === "grafana-provisioning") as
      | { name: string; configMap: { items: { key: string; path: string }[] } }
      | undefined;
    expect(prov?.configMap.items.map((i) => i.path.split("/")[0]).sort()).toEqual([
      "dashboards",
      "datasources",
    ]);
    const provMount = grafana.containers[0]?.volumeMounts?.find((m) => m.name === prov?.name)?.mountPath;
    const env = grafana.containers[0]?.env?.find((e) => e.name === "GF_PATHS_PROVISIONING")?.value;
    expect(provMount).toBe(env);
  });

  it("keeps Grafana's admin password an obvious placeholder, and anonymous access off", () => {
    const secret = generators(join(BASE, "grafana"), "secretGenerator").find(
      (g) => g.name === "grafana-admin",
    );
    expect(literal(secret, "GF_SECURITY_ADMIN_PASSWORD")).toMatch(/CHANGE-?ME/i);
    const c = containerOf("Deployment", "grafana");
    expect(c.envFrom?.map((e) => e.secretRef?.name)).toContain("grafana-admin");
    expect(c.env?.find((e) => e.name === "GF_AUTH_ANONYMOUS_ENABLED")?.value).toBe("false");
  });
});

describe("local overlay", () => {
  const k = kustomization(LOCAL);
  const patches = k.patches ?? [];

  /** The documents of a patch: a strategic merge patch (an object) or a JSON 6902 patch (a list). */
  const patchBody = (p: Patch): unknown =>
    parse(p.patch ?? readFileSync(resolve(LOCAL, p.path ?? ""), "utf8"));
  const jsonOps = (p: Patch) => {
    const body = patchBody(p);
    return Array.isArray(body) ? (body as { op: string; path: string; value?: unknown }[]) : [];
  };

  it("builds on the base", () => {
    expect(k.resources).toEqual(["../../base"]);
  });

  it("patches only objects the base has, at paths they have", () => {
    expect(patches.length).toBeGreaterThan(0);
    for (const p of patches) {
      const body = patchBody(p) as Partial<K8sObject> | unknown[];
      const kind = p.target?.kind ?? (Array.isArray(body) ? undefined : body.kind);
      const name = p.target?.name ?? (Array.isArray(body) ? undefined : body.metadata?.name);
      // A target by label selector (key=value) patches every object of the kind with that label.
      const [labelKey, labelValue] = (p.target?.labelSelector ?? "").split("=");
      const targets = p.target?.labelSelector
        ? baseObjects.filter(
            (o) => o.kind === kind && labelKey && o.metadata.labels?.[labelKey] === labelValue,
          )
        : [named<K8sObject>(baseObjects, kind ?? "", name ?? "")];
      expect(targets.length, `${kind} ${p.target?.labelSelector}`).toBeGreaterThan(0);
      for (const [target, op] of targets.flatMap((t) => jsonOps(p).map((op) => [t, op] as const))) {
        expect(["replace", "add", "remove"], op.path).toContain(op.op);
        const parent = op.op === "add" ? op.path.split("/").slice(0, -1) : op.path.split("/");
        const found = parent
          .slice(1)
          .reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], target);
        expect(found, `${kind} ${target.metadata.name}: ${op.path}`).toBeDefined();
      }
    }
  });

  it("keeps the 3 NATS nodes that R3 streams need", () => {
    for (const p of patches) {
      expect(p.patch ?? "", "no patch touches replicas").not.toMatch(/replicas/);
    }
  });

  it("shrinks the NATS volume and max_file_store together", () => {
    const natsPatches = patches.filter((p) => p.target?.kind === "StatefulSet" && p.target.name === "nats");
    const storage = natsPatches
      .flatMap(jsonOps)
      .find((op) => op.path === "/spec/volumeClaimTemplates/0/spec/resources/requests/storage")?.value;
    const merged = natsPatches.map(patchBody).find((b): b is Workload => !Array.isArray(b));
    const maxFileStore = merged?.spec.template.spec.containers
      .find((c) => c.name === "nats")
      ?.env?.find((e) => e.name === "NATS_JS_MAX_FILE_STORE")?.value;
    expect(storage).toBe("1Gi");
    expect(natsSize(maxFileStore ?? "")).toBeLessThan(quantity("1Gi"));
    expect(natsSize(maxFileStore ?? "")).toBeGreaterThan(0.5 * quantity("1Gi"));
  });
});

// Rendering needs kubectl (its built-in kustomize); it is not one of the project's dependencies.
const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;

describe.skipIf(!kubectl)("rendered with kubectl kustomize", () => {
  function render(dir: string): K8sObject[] {
    const out = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
    expect(out.status, out.stderr).toBe(0);
    // Deprecation warnings and the like come out on stderr.
    expect(out.stderr.trim()).toBe("");
    return parseAllDocuments(out.stdout).map((doc) => {
      expect(doc.errors).toEqual([]);
      return doc.toJS() as K8sObject;
    });
  }

  for (const [name, dir] of [
    ["base", BASE],
    ["local overlay", LOCAL],
  ] as const) {
    it(`renders the ${name} into consistent objects in namespace hangar`, () => {
      const objects = render(dir);
      for (const o of objects) {
        expect(o.metadata.labels?.["app.kubernetes.io/part-of"], `${o.kind} ${o.metadata.name}`).toBe(
          "hangar",
        );
        if (o.kind !== "Namespace")
          expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe("hangar");
      }
      for (const w of workloadsOf(objects)) {
        expect(w.spec.template.metadata.labels["app.kubernetes.io/part-of"]).toBe("hangar");
        expect(w.spec.selector.matchLabels["app.kubernetes.io/part-of"]).toBeUndefined();
      }
      checkWorkloads(objects);
      checkServices(objects);
      checkReferences(
        objects,
        ofKind(objects, "ConfigMap").map((c) => c.metadata.name),
        ofKind(objects, "Secret").map((s) => s.metadata.name),
      );
      expect(natsStatefulSet(objects).sts.spec.replicas).toBe(3);
      checkFileStoreFitsVolume(objects);
      // Generated names carry a content hash, and the references follow it.
      const secret = ofKind(objects, "Secret").find((s) =>
        s.metadata.name.startsWith("postgres-credentials-"),
      );
      const postgres = named<Workload>(objects, "StatefulSet", "postgres").spec.template.spec.containers[0];
      expect(postgres?.envFrom?.[0]?.secretRef?.name).toBe(secret?.metadata.name);
    });
  }
});
