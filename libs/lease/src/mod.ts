export type { Lease, LeaseOptions, LeaseValue } from "./lease.js";
export { acquireLease, LEASES_BUCKET } from "./lease.js";
