import { describe, expect, it } from "vitest";
import { TicketBook } from "./tickets.js";

const grant = {
  machineId: "m1",
  target: { kind: "exec" as const, command: ["/bin/sh", "-l"], tty: true, cols: 80, rows: 24 },
};

describe("TicketBook", () => {
  it("redeems a ticket once, for the grant it was issued for", () => {
    const book = new TicketBook();
    const ticket = book.issue(grant);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(book.redeem(ticket)).toEqual(grant);
    expect(book.redeem(ticket)).toBeUndefined();
  });

  it("refuses an unknown ticket", () => {
    const book = new TicketBook();
    book.issue(grant);
    expect(book.redeem("not-a-ticket")).toBeUndefined();
    expect(book.redeem("")).toBeUndefined();
  });

  it("refuses an expired ticket, and forgets it", () => {
    let now = 1_000;
    const book = new TicketBook(10_000, () => now);
    const late = book.issue(grant);
    const onTime = book.issue({
      machineId: "m2",
      target: { kind: "exec", command: ["sh"], tty: true, cols: 80, rows: 24 },
    });
    now += 9_999;
    expect(book.redeem(onTime)?.machineId).toBe("m2");
    now += 1;
    expect(book.size).toBe(0);
    expect(book.redeem(late)).toBeUndefined();
  });

  it("gives every ticket its own value", () => {
    const book = new TicketBook();
    const tickets = new Set(Array.from({ length: 100 }, () => book.issue(grant)));
    expect(tickets.size).toBe(100);
  });
});
