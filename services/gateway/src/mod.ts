export { StreamBackend, toMachineView } from "./machines/backend.js";
export type { MachineRecord } from "./machines/catalog.js";
export { Catalog } from "./machines/catalog.js";
export { MachineCommands } from "./machines/commands.js";
