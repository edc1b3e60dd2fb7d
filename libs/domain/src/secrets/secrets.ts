import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  SecretsDataKeyCreated: hangar.v1.SecretsDataKeyCreated,
  SecretsDataKeyRewrapped: hangar.v1.SecretsDataKeyRewrapped,
  SecretsUpdated: hangar.v1.SecretsUpdated,
  StagedSecretsDeployed: hangar.v1.StagedSecretsDeployed,
};

/** The events of one app's or one org's secrets. */
export type SecretsEvent = EventOf<typeof messages>;

/**
 * The SECRETS stream: one subject per scope, `ev.secret.app.<app>` and `ev.secret.org.<org>` (the
 * aggregate ids `app.<app>` and `org.<org>`: an app and an org of the same name never share one).
 */
export const secretsStream = defineStream({
  name: "SECRETS",
  subjectPrefix: "ev.secret",
  codec: eventCodec(messages),
});

/** The aggregate id of an app's secrets. */
export function appSecretsId(app: string): string {
  return `app.${app}`;
}

/** The aggregate id of an org's secrets. */
export function orgSecretsId(org: string): string {
  return `org.${org}`;
}

/** Most secrets (deployed and staged names together) one app or org may hold: a machine's environment stays small. */
export const MAX_SECRETS = 200;

/** A sealed value and its digest, as events carry them. */
export interface SealedValue {
  ciphertext: Uint8Array;
  digest: string;
}

/** A secret machines get at their next start. */
export interface DeployedSecret extends SealedValue {
  name: string;
  createdAtMs: number;
  updatedAtMs: number;
}

/** A change waiting for the next deploy: a new value, or `value` undefined for an unset. */
export interface StagedChange {
  name: string;
  value: SealedValue | undefined;
  atMs: number;
}

/** One scope's secrets: its sealed data key, what is deployed (at `version`) and what is staged. */
export interface SecretsState {
  dataKey: { masterKeyId: string; wrappedKey: Uint8Array } | undefined;
  version: number;
  deployed: Readonly<Record<string, DeployedSecret>>;
  staged: Readonly<Record<string, StagedChange>>;
}

export type SecretsCommand =
  | { type: "CreateDataKey"; masterKeyId: string; wrappedKey: Uint8Array; atMs: number }
  | {
      type: "RewrapDataKey";
      masterKeyId: string;
      wrappedKey: Uint8Array;
      previousMasterKeyId: string;
      atMs: number;
    }
  | {
      type: "UpdateSecrets";
      set: { name: string; ciphertext: Uint8Array; digest: string }[];
      unset: string[];
      staged: boolean;
      atMs: number;
    }
  | { type: "DeployStagedSecrets"; atMs: number };

function applyDeployed(
  deployed: Readonly<Record<string, DeployedSecret>>,
  changes: Iterable<StagedChange>,
): Record<string, DeployedSecret> {
  const out = { ...deployed };
  for (const c of changes) {
    if (!c.value) {
      delete out[c.name];
      continue;
    }
    const before = out[c.name];
    out[c.name] = {
      name: c.name,
      ...c.value,
      createdAtMs: before?.createdAtMs ?? c.atMs,
      updatedAtMs: c.atMs,
    };
  }
  return out;
}

/** The changes of an update, in order: unsets first, so a name both unset and set ends set. */
function changesOf(
  set: readonly { name?: string | null; ciphertext?: Uint8Array | null; digest?: string | null }[],
  unset: readonly string[],
  atMs: number,
): StagedChange[] {
  return [
    ...unset.map((name) => ({ name, value: undefined, atMs })),
    ...set.map((s) => ({
      name: s.name ?? "",
      value: { ciphertext: s.ciphertext ?? new Uint8Array(), digest: s.digest ?? "" },
      atMs,
    })),
  ];
}

/**
 * One scope's secrets. An update needs the data key its values were sealed with (made first, once);
 * a staged update waits in `staged`; an update that is not staged deploys the staged changes with
 * its own, and each deploy bumps `version`.
 */
export const secretsDecider: Decider<SecretsState, SecretsCommand, SecretsEvent> = {
  initialState: () => ({ dataKey: undefined, version: 0, deployed: {}, staged: {} }),

  decide(command, state) {
    switch (command.type) {
      case "CreateDataKey":
        if (state.dataKey) return [];
        return [
          {
            type: "SecretsDataKeyCreated",
            data: { masterKeyId: command.masterKeyId, wrappedKey: command.wrappedKey, atMs: command.atMs },
          },
        ];
      case "RewrapDataKey": {
        if (!state.dataKey) throw new DomainError("no data key to rewrap", "not_found");
        if (state.dataKey.masterKeyId === command.masterKeyId) return [];
        if (state.dataKey.masterKeyId !== command.previousMasterKeyId) {
          throw new DomainError(
            `data key is sealed by master key ${state.dataKey.masterKeyId}, not ${command.previousMasterKeyId}`,
            "failed_precondition",
          );
        }
        const { type: _, ...data } = command;
        return [{ type: "SecretsDataKeyRewrapped", data }];
      }
      case "UpdateSecrets": {
        if (!state.dataKey) throw new DomainError("secrets need a data key first", "failed_precondition");
        if (command.set.length === 0 && command.unset.length === 0) {
          throw new DomainError("values: name at least one secret to set or unset", "invalid_argument");
        }
        const names = new Set([...Object.keys(state.deployed), ...Object.keys(state.staged)]);
        for (const name of command.unset) names.delete(name);
        for (const s of command.set) names.add(s.name);
        if (names.size > MAX_SECRETS) {
          throw new DomainError(`at most ${MAX_SECRETS} secrets per app or org`, "invalid_argument");
        }
        return [
          {
            type: "SecretsUpdated",
            data: {
              set: command.set,
              unset: command.unset,
              staged: command.staged,
              atMs: command.atMs,
              version: command.staged ? state.version : state.version + 1,
            },
          },
        ];
      }
      case "DeployStagedSecrets":
        if (Object.keys(state.staged).length === 0) return [];
        return [{ type: "StagedSecretsDeployed", data: { atMs: command.atMs, version: state.version + 1 } }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case "SecretsDataKeyCreated":
      case "SecretsDataKeyRewrapped":
        return {
          ...state,
          dataKey: {
            masterKeyId: event.data.masterKeyId ?? "",
            wrappedKey: event.data.wrappedKey ?? new Uint8Array(),
          },
        };
      case "SecretsUpdated": {
        const d = event.data;
        const atMs = Number(d.atMs ?? 0);
        const changes = changesOf(d.set ?? [], d.unset ?? [], atMs);
        if (d.staged) {
          const staged = { ...state.staged };
          for (const c of changes) staged[c.name] = c;
          return { ...state, staged };
        }
        const deployed = applyDeployed(applyDeployed(state.deployed, Object.values(state.staged)), changes);
        return { ...state, deployed, staged: {}, version: Number(d.version ?? state.version + 1) };
      }
      case "StagedSecretsDeployed":
        return {
          ...state,
          deployed: applyDeployed(state.deployed, Object.values(state.staged)),
          staged: {},
          version: Number(event.data.version ?? state.version + 1),
        };
    }
  },
};
