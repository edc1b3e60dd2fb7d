export type { HostAgentOptions } from "./agent.js";
export { HostAgent } from "./agent.js";
