// The subset of the Fly Machines API schemas (shared/reference/fly-machines-openapi.yaml) that the CLI
// reads or writes. Fields stay optional where the spec leaves them optional.

export interface Organization {
  name?: string;
  slug?: string;
}

export interface App {
  id?: string;
  name?: string;
  organization?: Organization;
  status?: string;
}

export interface ListApp {
  id?: string;
  name?: string;
  machine_count?: number;
  network?: unknown;
}

export interface ListAppsResponse {
  apps?: ListApp[];
  total_apps?: number;
}

export interface MachinePort {
  port?: number;
  start_port?: number;
  end_port?: number;
  handlers?: string[];
  force_https?: boolean;
}

export interface MachineService {
  protocol?: string;
  internal_port?: number;
  ports?: MachinePort[];
  autostart?: boolean;
  autostop?: boolean;
}

export interface MachineGuest {
  cpu_kind?: string;
  cpus?: number;
  memory_mb?: number;
}

export interface MachineInit {
  cmd?: string[];
  entrypoint?: string[];
  exec?: string[];
}

export type RestartPolicy = "no" | "always" | "on-failure";

export interface MachineConfig {
  image?: string;
  env?: Record<string, string>;
  guest?: MachineGuest;
  init?: MachineInit;
  restart?: { policy?: RestartPolicy; max_retries?: number };
  services?: MachineService[];
  metadata?: Record<string, string>;
  auto_destroy?: boolean;
}

export interface MachineEvent {
  id?: string;
  type?: string;
  status?: string;
  source?: string;
  /** Milliseconds since the epoch. */
  timestamp?: number;
  request?: unknown;
}

export interface Machine {
  id: string;
  name?: string;
  state?: string;
  region?: string;
  instance_id?: string;
  private_ip?: string;
  config?: MachineConfig;
  image_ref?: { registry?: string; repository?: string; tag?: string; digest?: string };
  events?: MachineEvent[];
  created_at?: string;
  updated_at?: string;
}

export interface CreateMachineRequest {
  name?: string;
  region?: string;
  config: MachineConfig;
}

export interface StopRequest {
  signal?: string;
  /** A Go duration string, e.g. "30s". */
  timeout?: string;
}

/** The states the wait endpoint accepts. */
export type WaitState = "started" | "stopped" | "destroyed";
