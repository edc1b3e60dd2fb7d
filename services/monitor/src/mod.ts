export { Monitor } from "./monitor.js";
