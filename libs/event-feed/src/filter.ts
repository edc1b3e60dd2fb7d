import { isPublicEventType, PUBLIC_EVENT_TYPES, type PublicEvent } from "./public-event.js";

/**
 * What a subscriber receives. Every field narrows: `org` and `apps` come from the token's scope (an
 * org-wide token has no `apps`; an operator token may have no `org`), `app` and `types` from the request.
 */
export interface EventFilter {
  app?: string;
  org?: string;
  /** The apps a token is limited to (its app caveat). */
  apps?: ReadonlySet<string>;
  /** Public event types, exactly as `PublicEvent.type`. */
  types?: ReadonlySet<string>;
}

/** Whether `e` passes `filter`. An event of no known org passes only a filter without `org`. */
export function matchesFilter(filter: EventFilter, e: PublicEvent): boolean {
  if (filter.types !== undefined && !filter.types.has(e.type)) return false;
  if (filter.org !== undefined && e.org !== filter.org) return false;
  if (filter.app !== undefined && e.app !== filter.app) return false;
  if (filter.apps !== undefined && (e.app === null || !filter.apps.has(e.app))) return false;
  return true;
}

/** A filter a subscriber asked for that cannot be served; the message says what to change. */
export class FilterError extends Error {
  override readonly name = "FilterError";
}

/**
 * `machine.started,release.created` as a set of types. A type may end in `.*` for every event of an
 * aggregate (`machine.*`). An empty list or an unknown type is refused.
 */
export function parseTypesParam(csv: string): Set<string> {
  const out = new Set<string>();
  for (const raw of csv.split(",")) {
    const type = raw.trim();
    if (type === "") continue;
    if (type.endsWith(".*")) {
      const aggregate = type.slice(0, -1);
      const all = PUBLIC_EVENT_TYPES.filter((t) => t.startsWith(aggregate));
      if (all.length === 0)
        throw new FilterError(`types: no event type starts with ${JSON.stringify(aggregate)}`);
      for (const t of all) out.add(t);
      continue;
    }
    if (!isPublicEventType(type))
      throw new FilterError(
        `types: unknown event type ${JSON.stringify(type)} (known: ${PUBLIC_EVENT_TYPES.join(", ")})`,
      );
    out.add(type);
  }
  if (out.size === 0) throw new FilterError("types: name at least one event type, e.g. machine.started");
  return out;
}
