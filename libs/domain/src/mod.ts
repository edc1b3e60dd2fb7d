export type { AppCommand, AppEvent, AppState } from "./apps/app.js";
export { appDecider, appsStream } from "./apps/app.js";
export type { HostCommand, HostEvent, HostSpec, HostState } from "./hosts/host.js";
export { hostDecider, hostsStream } from "./hosts/host.js";
export type { MachineCommand, MachineEvent, MachineState, MachineStatus } from "./machines/machine.js";
export { machineAggregateId, machineDecider, machinesStream } from "./machines/machine.js";
