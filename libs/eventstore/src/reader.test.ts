import { describe, expect, it } from "vitest";
import { parseAckReply } from "./reader.js";

describe("parseAckReply", () => {
  it("reads stream sequence, delivery sequence and pending from the 9-token form", () => {
    expect(parseAckReply("$JS.ACK.MACHINES.rd_x1.1.1234.17.1700000000000000000.42")).toEqual({
      seq: 1234,
      dseq: 17,
      pending: 42,
    });
  });

  it("reads them from the 12-token form with domain, account hash and a trailing token", () => {
    expect(parseAckReply("$JS.ACK.hub.ACCHASH.MACHINES.rd_x1.3.99.5.1700000000000000000.0.tok")).toEqual({
      seq: 99,
      dseq: 5,
      pending: 0,
    });
  });

  it("refuses subjects of another shape", () => {
    expect(parseAckReply("_INBOX.abc.def")).toBeUndefined();
    expect(parseAckReply("$JS.ACK.a.b.c.d.e.f.g.h")).toBeUndefined();
  });
});

describe("parseAckReply on malformed numbers", () => {
  it("refuses a reply whose sequences are not decimal numbers", () => {
    expect(parseAckReply("$JS.ACK.MACHINES.rd_x1.1.12x4.17.1700000000000000000.42")).toBeUndefined();
    expect(parseAckReply("$JS.ACK.MACHINES.rd_x1.1..17.1700000000000000000.42")).toBeUndefined();
    expect(parseAckReply("$JS.ACK.MACHINES.rd_x1.1.1234.17.1700000000000000000.-1")).toBeUndefined();
  });
});
