export type { AppCommand, AppEvent, AppState } from "./apps/app.js";
export { appDecider, appsStream } from "./apps/app.js";
export type { HostCommand, HostEvent, HostSpec, HostState, KnownHost, Reservation } from "./hosts/host.js";
export { hostDecider, hostHasRoom, hostsStream } from "./hosts/host.js";
export type {
  ExistingMachine,
  LeaseGuard,
  MachineCheck,
  MachineCommand,
  MachineEvent,
  MachineLease,
  MachineState,
  MachineStatus,
} from "./machines/machine.js";
export { machineAggregateId, machineDecider, machineMayRun, machinesStream } from "./machines/machine.js";
