import { readFileSync } from "node:fs";
import {
  appsStream,
  machinesStream,
  pgclustersStream,
  releasesStream,
  scalingStream,
  volumesStream,
} from "@hangar/domain";
import { type AggregateStream, encodeBatch } from "@hangar/eventstore";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import {
  FilterError,
  matchesFilter,
  PUBLIC_EVENT_TYPES,
  type PublicEvent,
  parseEventId,
  parseTypesParam,
  publicData,
  toPublicEvents,
} from "../src/mod.js";

const schema = JSON.parse(readFileSync(new URL("../../../docs/events.schema.json", import.meta.url), "utf8"));
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats.default(ajv);
const validate = ajv.compile(schema);
const resolver = { orgOfApp: (app: string) => (app === "web" ? "acme" : undefined) };

function message(
  stream: AggregateStream<{ type: string }>,
  aggregateId: string,
  events: { type: string; data: unknown }[],
  seq = 7,
) {
  return {
    seq,
    subject: `${stream.subjectPrefix}.${aggregateId}`,
    data: encodeBatch(
      stream,
      aggregateId,
      events as { type: string }[],
      { commandId: "c1" },
      1_700_000_000_000,
    ),
  };
}

const SAMPLES: [AggregateStream<{ type: string }>, string][] = [
  [appsStream, "web"],
  [machinesStream, "web.m1"],
  [releasesStream, "web"],
  [scalingStream, "web"],
  [volumesStream, "web.vol_0123456789abcdef"],
  [pgclustersStream, "db1"],
];

describe("toPublicEvents", () => {
  it("gives every event type of every sourced stream in the shape the JSON schema describes", () => {
    const seen = new Set<string>();
    for (const [stream, id] of SAMPLES) {
      for (const type of stream.codec.types) {
        const [e] = toPublicEvents(message(stream, id, [{ type, data: {} }]), resolver);
        expect(validate(e), `${type}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        seen.add((e as PublicEvent).type);
      }
    }
    // The schema's list of types is exactly what the feed produces.
    expect([...seen].sort()).toEqual([...PUBLIC_EVENT_TYPES]);
    expect(schema.properties.type.enum).toEqual([...PUBLIC_EVENT_TYPES]);
  });

  it("names app, org, subject and time, and ids the events of one message <seq>.<index>", () => {
    const events = toPublicEvents(
      message(
        machinesStream,
        "web.m1",
        [
          {
            type: "MachineCreated",
            data: { machineId: "m1", app: "web", configJson: '{"image":"nginx:1"}' },
          },
          { type: "MachineStartRequested", data: { instanceId: "i1" } },
        ],
        41,
      ),
      resolver,
    );
    expect(events).toEqual([
      {
        id: "41.0",
        schema: "hangar.event.v1",
        type: "machine.created",
        app: "web",
        org: "acme",
        time: "2023-11-14T22:13:20.000Z",
        subject: "web.m1",
        data: {
          machine_id: "m1",
          app: "web",
          name: "",
          region: "",
          instance_id: "",
          image: "nginx:1",
          skip_launch: false,
          host_id: "",
        },
      },
      expect.objectContaining({ id: "41.1", type: "machine.start_requested", data: { instance_id: "i1" } }),
    ]);
    const [single] = toPublicEvents(
      message(scalingStream, "web", [{ type: "ScaleDecided", data: {} }], 42),
      resolver,
    );
    expect(single?.id).toBe("42");
    const [unknownOrg] = toPublicEvents(
      message(releasesStream, "gone", [{ type: "ReleaseCreated", data: {} }]),
      resolver,
    );
    expect(unknownOrg?.org).toBeNull();
    const [created] = toPublicEvents(
      message(appsStream, "fresh", [{ type: "AppCreated", data: { name: "fresh", orgSlug: "globex" } }]),
      resolver,
    );
    expect(created?.org).toBe("globex");
  });

  it("never carries a secret: config JSON, passwords, tokens, sealed values, lease nonces", () => {
    const env = { DATABASE_PASSWORD: "hunter2", API_TOKEN: "tok_secret" };
    const [machine] = toPublicEvents(
      message(machinesStream, "web.m1", [
        { type: "MachineCreated", data: { configJson: JSON.stringify({ image: "app:1", env }) } },
      ]),
      resolver,
    );
    const [lease] = toPublicEvents(
      message(machinesStream, "web.m1", [
        { type: "MachineLeaseAcquired", data: { nonce: "lease-nonce-1", owner: "me", expiresAtUnixMs: 5 } },
      ]),
      resolver,
    );
    const [release] = toPublicEvents(
      message(releasesStream, "web", [
        { type: "ReleaseCreated", data: { configJson: JSON.stringify({ env }) } },
      ]),
      resolver,
    );
    const text = JSON.stringify([machine, lease, release]);
    for (const secret of ["hunter2", "tok_secret", "lease-nonce-1", "config_json"])
      expect(text).not.toContain(secret);
    expect(lease?.data).toEqual({ owner: "me", expires_at_unix_ms: 5, description: "" });
    expect(
      publicData({ user: "u", password: "p", nested: [{ sealedValue: "s", ok: 1 }], accessToken: "t" }),
    ).toEqual({ user: "u", nested: [{ ok: 1 }] });
    // The schema refuses data that would carry one.
    const leak = { ...(machine as PublicEvent), data: { inner: { db_password: "x" } } };
    expect(validate(leak)).toBe(false);
  });

  it("gives nothing for a subject of a stream the feed does not source", () => {
    expect(
      toPublicEvents({ seq: 1, subject: "ev.secret.app.web", data: new Uint8Array() }, resolver),
    ).toEqual([]);
  });
});

describe("ids and filters", () => {
  it("parses the ids it writes and refuses anything else", () => {
    expect(parseEventId("41")).toEqual({ seq: 41 });
    expect(parseEventId("41.1")).toEqual({ seq: 41, index: 1 });
    for (const bad of ["", "-1", "4a", "1.2.3", "1e3", "99999999999999999"])
      expect(parseEventId(bad)).toBeUndefined();
  });

  it("parses types, with aggregate wildcards, and says what is wrong with a bad list", () => {
    expect(parseTypesParam("machine.started, release.created")).toEqual(
      new Set(["machine.started", "release.created"]),
    );
    expect(parseTypesParam("release.*")).toEqual(
      new Set([
        "release.created",
        "release.command_started",
        "release.command_finished",
        "release.started",
        "release.rolling_back",
        "release.failed",
        "release.succeeded",
      ]),
    );
    expect(() => parseTypesParam("machine.exploded")).toThrow(FilterError);
    expect(() => parseTypesParam("machine.exploded")).toThrow(/unknown event type "machine.exploded"/);
    expect(() => parseTypesParam(" , ")).toThrow(/at least one/);
    expect(() => parseTypesParam("nothing.*")).toThrow(FilterError);
  });

  it("matches by org, app, the token's apps and types; an event of no org only without an org filter", () => {
    const e = { type: "machine.started", app: "web", org: "acme" } as PublicEvent;
    const orphan = { ...e, org: null };
    expect(matchesFilter({}, e)).toBe(true);
    expect(matchesFilter({ org: "acme", app: "web", types: new Set(["machine.started"]) }, e)).toBe(true);
    expect(matchesFilter({ org: "globex" }, e)).toBe(false);
    expect(matchesFilter({ app: "api" }, e)).toBe(false);
    expect(matchesFilter({ apps: new Set(["api"]) }, e)).toBe(false);
    expect(matchesFilter({ types: new Set(["machine.created"]) }, e)).toBe(false);
    expect(matchesFilter({ org: "acme" }, orphan)).toBe(false);
    expect(matchesFilter({}, orphan)).toBe(true);
  });
});
