/** One started, non-cordoned machine that can take requests for an app. */
export interface Backend {
  machineId: string;
  /** IP address the machine listens on. */
  address: string;
  port: number;
  region?: string;
}

/** Where an app's requests may go; `backends` is empty when the app exists but nothing can serve it. */
export interface AppRoute {
  app: string;
  backends: Backend[];
}

/** The proxy's view of routable apps; it may change between any two requests. */
export interface RouteTable {
  lookup(app: string): AppRoute | undefined;
}
