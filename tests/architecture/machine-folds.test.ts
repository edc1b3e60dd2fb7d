import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findMachineFolds, findMachineFoldsIn } from "./machine-folds.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("machine events are folded only by MachinesView", () => {
  it("finds no other module that folds MACHINES into per-app or per-host collections", () => {
    const folds = findMachineFolds(root);
    expect(folds.map((f) => `${f.file}:${f.line} ${f.rule}: ${f.code}`)).toEqual([]);
  });

  it("recognises a module that evolves machine events or replays MACHINES itself", () => {
    const folds = findMachineFoldsIn(
      "services/x/src/a.ts",
      `
      const view = await AggregateView.start(store, machinesStream, machineDecider);
      const r = await replay(store, opts.machines ?? machinesStream, { onEvents });
      for (const e of events) state = machineDecider.evolve(state, e);
      nc.subscribe("ev.machine.>", { callback });
      nc.subscribe(\`ev.machine.\${app}.*\`);
      `,
    );
    expect(folds.map((f) => [f.line, f.rule])).toEqual([
      [2, "reads-machines-stream"],
      [3, "reads-machines-stream"],
      [4, "evolves-machines"],
      [5, "reads-machines-stream"],
      [6, "reads-machines-stream"],
    ]);
  });

  it("recognises a per-app or per-host index built from machine changes", () => {
    const folds = findMachineFoldsIn(
      "services/x/src/b.ts",
      `
      class Index {
        apply(c: MachineChange) { this.byApp.get(c.state.app)?.add(c.aggregateId); }
        other(c: ViewChange<MachineState, MachineEvent>) { byHost.set(c.state.hostId, 1); }
      }
      machines.subscribe(({ state }) => { if (state.status !== "absent") seen.add(state.app); });
      this.machines.subscribe((c) => { const { hostId } = c.state; perHost.set(hostId, c); });
      AggregateView.start(store, machinesStream, machineDecider, { onChange: (c) => byApp.set(c.state.app, c) });
      class Monitor {
        constructor(private readonly view: MachinesView) { view.subscribe((c) => seen.add(c.state.app)); }
      }
      const fleet = await MachinesView.start(store);
      fleet.subscribe(({ state }) => hosts.add(state.hostId));
      `,
    );
    expect(folds.map((f) => [f.line, f.rule])).toEqual([
      [3, "indexes-machines-by-app-or-host"],
      [4, "indexes-machines-by-app-or-host"],
      [6, "indexes-machines-by-app-or-host"],
      [7, "indexes-machines-by-app-or-host"],
      [8, "reads-machines-stream"],
      [8, "indexes-machines-by-app-or-host"],
      [10, "indexes-machines-by-app-or-host"],
      [13, "indexes-machines-by-app-or-host"],
    ]);
  });

  it("leaves alone what only reads the view, derives per machine, or keys other data by app", () => {
    const folds = findMachineFoldsIn(
      "services/x/src/c.ts",
      `
      machines.subscribe((c) => { if (c.state.status !== "absent") this.changed(c.state.app); });
      machines.subscribe((c) => { createdAt.set(c.aggregateId, c.events[0].timeUnixMs); });
      const list = view.ofApp(app);
      loads.set(sample.app, sample);
      await ensureStream(store.jsm, machinesStream);
      const handler = new CommandHandler(store, machinesStream, machineDecider);
      `,
    );
    expect(folds).toEqual([]);
    expect(findMachineFoldsIn("libs/service/src/machines-view.ts", "machineDecider.evolve(s, e);")).toEqual(
      [],
    );
  });
});
