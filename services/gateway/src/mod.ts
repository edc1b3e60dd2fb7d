export { StreamBackend, toMachineView } from "./machines/backend.js";
export type { MachineRecord } from "./machines/catalog.js";
export { Catalog } from "./machines/catalog.js";
export { MachineCommands } from "./machines/commands.js";
export type { WakeServiceOptions } from "./machines/wake.js";
export { serveWakes, wakeCommandId } from "./machines/wake.js";
