import { describe, expect, it } from "vitest";
import { auditTable } from "./audit.js";
import { whoamiText } from "./auth.js";

describe("auditTable", () => {
  it("shows each call's time, action, target, app, org, token and status", () => {
    const table = auditTable([
      {
        seq: 9,
        time: "2026-12-05T01:02:03.456Z",
        token_id: "tok-1",
        token_kind: "deploy",
        action: "machine.start",
        target: "m1",
        org: "acme",
        app: "web",
        status: 200,
        method: "POST",
        path: "/v1/apps/web/machines/m1/start",
        request_id: "r1",
      },
    ]);
    expect(table).toBe(
      "TIME                  ACTION         TARGET  APP  ORG   TOKEN           STATUS\n" +
        "2026-12-05 01:02:03Z  machine.start  m1      web  acme  tok-1 (deploy)  200\n",
    );
  });
});

describe("whoamiText", () => {
  it("says what the token may do", () => {
    const deploy = whoamiText({
      token_id: "t1",
      kind: "deploy",
      org: "acme",
      apps: ["web"],
      read_only: false,
      exec_only: false,
      expires_at: null,
    });
    expect(deploy).toMatch(/^Token t1\n/);
    expect(deploy).toMatch(/Scope: +acme: web\n/);
    expect(deploy).toMatch(/Access: +read and write\n/);
    expect(deploy).toMatch(/Expires: +never\n/);
    const operator = whoamiText({
      token_id: "op",
      kind: "operator",
      org: null,
      apps: null,
      read_only: false,
      exec_only: false,
      expires_at: null,
    });
    expect(operator).toMatch(/Scope: +every org \(operator\)/);
    const exec = whoamiText({
      token_id: "x",
      kind: "machine-exec",
      org: "acme",
      apps: ["web"],
      read_only: false,
      exec_only: true,
      expires_at: "2027-01-01T00:00:00.000Z",
    });
    expect(exec).toMatch(/Access: +exec into machines only/);
  });
});
