import { deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { MAX_SECRETS, type SecretsCommand, type SecretsEvent, secretsDecider } from "./secrets.js";

const spec = deciderSpec(secretsDecider);
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const keyCreated: SecretsEvent = {
  type: "SecretsDataKeyCreated",
  data: { masterKeyId: "m1", wrappedKey: bytes("wrapped"), atMs: 1 },
};
const sealed = (name: string, v: string) => ({ name, ciphertext: bytes(`ct-${v}`), digest: `d-${v}` });
const update = (
  set: ReturnType<typeof sealed>[],
  unset: string[],
  staged: boolean,
  atMs = 10,
): Extract<SecretsCommand, { type: "UpdateSecrets" }> => ({
  type: "UpdateSecrets",
  set,
  unset,
  staged,
  atMs,
});
const updated = (cmd: ReturnType<typeof update>, version: number): SecretsEvent => {
  const { type: _, ...data } = cmd;
  return { type: "SecretsUpdated", data: { ...data, version } };
};

describe("secrets decider", () => {
  it("creates the data key once", () => {
    const create = {
      type: "CreateDataKey",
      masterKeyId: "m1",
      wrappedKey: bytes("wrapped"),
      atMs: 1,
    } as const;
    spec.given([]).when(create).then([keyCreated]);
    spec
      .given([keyCreated])
      .when({ ...create, wrappedKey: bytes("other") })
      .then([]);
  });

  it("refuses updates before the data key and empty updates", () => {
    spec
      .given([])
      .when(update([sealed("A", "1")], [], false))
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
    spec
      .given([keyCreated])
      .when(update([], [], false))
      .thenThrows((e) => isDomainError(e, "invalid_argument"));
  });

  it("deploys an update at once and bumps the version; unset removes", () => {
    const set = update([sealed("A", "1"), sealed("B", "2")], [], false);
    const unset = update([], ["A"], false, 20);
    spec
      .given([keyCreated])
      .when(set)
      .then([updated(set, 1)]);
    const state = fold(secretsDecider, [keyCreated, updated(set, 1), updated(unset, 2)]);
    expect(state.version).toBe(2);
    expect(Object.keys(state.deployed)).toEqual(["B"]);
    expect(state.deployed.B?.digest).toBe("d-2");
  });

  it("keeps staged changes apart until a deploy, which applies them", () => {
    const first = update([sealed("A", "1")], [], false);
    const staged = update([sealed("A", "2"), sealed("C", "3")], [], true, 30);
    const given = [keyCreated, updated(first, 1), updated(staged, 1)];
    const state = fold(secretsDecider, given);
    expect(state.deployed.A?.digest).toBe("d-1");
    expect(Object.keys(state.staged).sort()).toEqual(["A", "C"]);
    const deploy = { type: "DeployStagedSecrets", atMs: 40 } as const;
    spec
      .given(given)
      .when(deploy)
      .then([{ type: "StagedSecretsDeployed", data: { atMs: 40, version: 2 } }]);
    const after = fold(
      secretsDecider,
      [{ type: "StagedSecretsDeployed", data: { atMs: 40, version: 2 } }],
      state,
    );
    expect(after.deployed.A).toMatchObject({ digest: "d-2", createdAtMs: 10, updatedAtMs: 30 });
    expect(after.deployed.C?.digest).toBe("d-3");
    expect(after.staged).toEqual({});
    spec.given([keyCreated]).when(deploy).then([]);
  });

  it("deploys staged changes with the next update that is not staged", () => {
    const staged = update([], ["A"], true);
    const now = update([sealed("B", "2")], [], false, 20);
    const state = fold(secretsDecider, [
      keyCreated,
      updated(update([sealed("A", "1")], [], false), 1),
      updated(staged, 1),
      updated(now, 2),
    ]);
    expect(Object.keys(state.deployed)).toEqual(["B"]);
    expect(state.staged).toEqual({});
  });

  it("rewraps from the key it is sealed by, once", () => {
    const rewrap = {
      type: "RewrapDataKey",
      masterKeyId: "m2",
      wrappedKey: bytes("w2"),
      previousMasterKeyId: "m1",
      atMs: 5,
    } as const;
    const { type: _, ...data } = rewrap;
    spec
      .given([keyCreated])
      .when(rewrap)
      .then([{ type: "SecretsDataKeyRewrapped", data }]);
    spec
      .given([keyCreated, { type: "SecretsDataKeyRewrapped", data }])
      .when(rewrap)
      .then([]);
    spec
      .given([keyCreated])
      .when({ ...rewrap, previousMasterKeyId: "m0" })
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
    spec
      .given([])
      .when(rewrap)
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("caps the number of secrets", () => {
    const many = Array.from({ length: MAX_SECRETS + 1 }, (_, i) => sealed(`S${i}`, String(i)));
    spec
      .given([keyCreated])
      .when(update(many, [], false))
      .thenThrows((e) => isDomainError(e, "invalid_argument"));
  });
});
