/**
 * What no sandbox reaches, machine or build step, whatever the settings add: private, loopback,
 * link-local, multicast and reserved blocks of both families (the control plane and other tenants
 * live there; fc00::/7 holds every org's 6PN). Public addresses are egress.
 */
export const BUILT_IN_EGRESS_DENY = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
] as const;
