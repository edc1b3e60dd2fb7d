export type { EventFeedOptions, FeedEndReason, FeedSubscribeOptions, FeedSubscription } from "./feed.js";
export { EventFeed, FeedEvent } from "./feed.js";
export type { EventFilter } from "./filter.js";
export { FilterError, matchesFilter, parseTypesParam } from "./filter.js";
export type { FeedMessage, FeedPosition, OrgResolver, PublicEvent } from "./public-event.js";
export {
  EVENT_SCHEMA,
  eventIdOf,
  FEED_STREAMS,
  isPublicEventType,
  PUBLIC_EVENT_TYPES,
  parseEventId,
  publicData,
  publicEventType,
  toPublicEvent,
  toPublicEvents,
} from "./public-event.js";
export type { EventsRelayOptions, LeasedRelay } from "./relay.js";
export {
  EventsRelay,
  RELAY_LEASE,
  runRelayUnderLease,
  SOURCE_SEQ_HEADER,
  SOURCE_STREAM_HEADER,
} from "./relay.js";
export type { SseOptions, SseResponse } from "./sse.js";
export { sseStream, writeSse } from "./sse.js";
export {
  EVENTS_STREAM,
  EVENTS_SUBJECT_PREFIX,
  ensureEventsStream,
  eventsFilter,
  eventsStreamConfig,
  eventsStreamName,
  originalSubject,
  sourceNames,
} from "./stream.js";
