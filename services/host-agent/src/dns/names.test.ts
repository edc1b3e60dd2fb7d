import { describe, expect, it } from "vitest";
import { type DnsMachine, NameTable, RecordType } from "./names.js";

const { AAAA, TXT, ANY } = RecordType;
const A = 1;

/** A started machine of org "acme" on host h1 in region ams, overridable field by field. */
function machine(id: string, fields: Partial<DnsMachine> = {}): DnsMachine {
  return {
    id,
    app: "b",
    org: "acme",
    region: "ams",
    hostId: "h1",
    processGroup: "app",
    address: `fdaa:0:1:0:${id}::1`,
    ipv4: "",
    started: true,
    running: true,
    ...fields,
  };
}

/** Given these machines, on host h1 in region ams (regions nearest first: fra, iad). */
function given(...machines: DnsMachine[]): NameTable {
  const table = new NameTable({ hostId: "h1", region: "ams", regionOrder: ["fra", "iad"] });
  for (const m of machines) table.upsert(m);
  return table;
}

const answer = (aaaa: string[], txt: string[] = []) => ({ kind: "answer", aaaa, txt });
const NXDOMAIN = { kind: "nxdomain" };

describe("NameTable", () => {
  it("answers <app>.internal with the addresses of the app's started machines", () => {
    const table = given(
      machine("1"),
      machine("2"),
      machine("3", { started: false }),
      machine("4", { app: "c" }),
    );
    expect(table.resolve("acme", "b.internal", AAAA)).toEqual(answer(["fdaa:0:1:0:1::1", "fdaa:0:1:0:2::1"]));
  });

  it("answers <id>.vm.<app>.internal with that machine only, and NODATA once it stopped", () => {
    const table = given(machine("1"), machine("2"));
    expect(table.resolve("acme", "2.vm.b.internal", AAAA)).toEqual(answer(["fdaa:0:1:0:2::1"]));
    table.upsert(machine("2", { started: false }));
    expect(table.resolve("acme", "2.vm.b.internal", AAAA)).toEqual(answer([]));
    expect(table.resolve("acme", "b.internal", AAAA)).toEqual(answer(["fdaa:0:1:0:1::1"]));
  });

  it("answers <region>.<app>.internal and <group>.process.<app>.internal", () => {
    const table = given(
      machine("1", { region: "ams", processGroup: "web" }),
      machine("2", { region: "iad", processGroup: "worker" }),
      machine("3", { region: "iad", processGroup: "web" }),
    );
    expect(table.resolve("acme", "iad.b.internal", AAAA)).toEqual(
      answer(["fdaa:0:1:0:2::1", "fdaa:0:1:0:3::1"]),
    );
    expect(table.resolve("acme", "web.process.b.internal", AAAA)).toEqual(
      answer(["fdaa:0:1:0:1::1", "fdaa:0:1:0:3::1"]),
    );
    expect(table.resolve("acme", "syd.b.internal", AAAA)).toEqual(NXDOMAIN);
    expect(table.resolve("acme", "db.process.b.internal", AAAA)).toEqual(NXDOMAIN);
  });

  it("orders top<N>.nearest.of: same host, same region, configured regions, the rest alphabetically, ties by id", () => {
    const table = given(
      machine("9", { hostId: "h2", region: "syd" }),
      machine("8", { hostId: "h2", region: "bog" }),
      machine("7", { hostId: "h2", region: "iad" }),
      machine("6", { hostId: "h2", region: "fra" }),
      machine("5", { hostId: "h2", region: "ams" }),
      machine("4", { hostId: "h2", region: "ams" }),
      machine("3", { hostId: "h1", region: "ams" }),
    );
    const order = ["3", "4", "5", "6", "7", "8", "9"].map((id) => `fdaa:0:1:0:${id}::1`);
    expect(table.resolve("acme", "top1.nearest.of.b.internal", AAAA)).toEqual(answer(order.slice(0, 1)));
    expect(table.resolve("acme", "top4.nearest.of.b.internal", AAAA)).toEqual(answer(order.slice(0, 4)));
    expect(table.resolve("acme", "top50.nearest.of.b.internal", AAAA)).toEqual(answer(order));
    expect(table.resolve("acme", "top0.nearest.of.b.internal", AAAA)).toEqual(NXDOMAIN);
    expect(table.resolve("acme", "top1.nearest.of.nope.internal", AAAA)).toEqual(NXDOMAIN);
  });

  it("answers the TXT names: _apps, regions.<app> and vms.<app>", () => {
    const table = given(
      machine("2", { region: "iad" }),
      machine("1"),
      machine("3", { region: "syd", started: false }),
      machine("4", { app: "a" }),
      machine("5", { app: "z", org: "other" }),
    );
    expect(table.resolve("acme", "_apps.internal", TXT)).toEqual(answer([], ["a,b"]));
    expect(table.resolve("acme", "regions.b.internal", TXT)).toEqual(answer([], ["ams,iad"]));
    expect(table.resolve("acme", "vms.b.internal", TXT)).toEqual(answer([], ["1 ams,2 iad"]));
  });

  it("answers only within the asker's org: another org's app is NXDOMAIN like a name that does not exist", () => {
    const table = given(machine("1"), machine("2", { app: "x", org: "other" }));
    expect(table.resolve("other", "b.internal", AAAA)).toEqual(NXDOMAIN);
    expect(table.resolve("other", "1.vm.b.internal", AAAA)).toEqual(NXDOMAIN);
    expect(table.resolve("other", "vms.b.internal", TXT)).toEqual(NXDOMAIN);
    expect(table.resolve("other", "_apps.internal", TXT)).toEqual(answer([], ["x"]));
    expect(table.resolve("acme", "nothing.internal", AAAA)).toEqual(NXDOMAIN);
  });

  it("answers an existing name asked for another type with no records (NODATA), names case-insensitively", () => {
    const table = given(machine("1"));
    expect(table.resolve("acme", "b.internal", A)).toEqual(answer([]));
    expect(table.resolve("acme", "_apps.internal", AAAA)).toEqual(answer([]));
    expect(table.resolve("acme", "B.Internal.", AAAA)).toEqual(answer(["fdaa:0:1:0:1::1"]));
    expect(table.resolve("acme", "vms.b.internal", ANY)).toEqual(answer([], ["1 ams"]));
  });

  it("leaves names outside .internal to the host's resolvers", () => {
    expect(given().resolve("acme", "example.com", A)).toEqual({ kind: "forward" });
    expect(given().resolve("acme", "internal.example.com", A)).toEqual({ kind: "forward" });
  });

  it("forgets a removed machine, and an app without machines", () => {
    const table = given(machine("1"), machine("2"));
    table.remove("b", "1");
    expect(table.resolve("acme", "1.vm.b.internal", AAAA)).toEqual(NXDOMAIN);
    table.remove("b", "2");
    expect(table.resolve("acme", "b.internal", AAAA)).toEqual(NXDOMAIN);
    expect(table.resolve("acme", "_apps.internal", TXT)).toEqual(NXDOMAIN);
  });

  it("keeps its version (and so encoded answers) when a machine's record comes again unchanged", () => {
    const table = given(machine("1"));
    const version = table.version;
    table.upsert(machine("1"));
    expect(table.version).toBe(version);
    table.upsert(machine("1", { started: false }));
    expect(table.version).toBeGreaterThan(version);
  });

  it("leaves a machine without a 6PN address out of every answer", () => {
    const table = given(machine("1", { address: "" }));
    expect(table.resolve("acme", "b.internal", AAAA)).toEqual(answer([]));
    expect(table.resolve("acme", "vms.b.internal", TXT)).toEqual(answer([]));
  });

  it("knows the askers of this host by 6PN or IPv4 address; the running one where two held an address", () => {
    const table = given(
      machine("1", { ipv4: "172.30.0.2", running: false, started: false }),
      machine("2", { ipv4: "172.30.0.2" }),
      machine("3", { hostId: "h2", ipv4: "172.30.0.6" }),
    );
    expect(table.asker("FDAA:0:1:0:1:0:0:1")?.id).toBe("1");
    expect(table.asker("172.30.0.2")?.id).toBe("2");
    expect(table.asker("::ffff:172.30.0.2")?.id).toBe("2");
    expect(table.asker("172.30.0.6")).toBeUndefined();
    expect(table.asker("fdaa:0:1:0:3::1")).toBeUndefined();
    expect(table.asker("10.0.0.1")).toBeUndefined();
  });
});
