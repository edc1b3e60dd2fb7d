export type { LoadedAggregate } from "./aggregate.js";
export { catchUp, loadAggregate, REMEMBERED_COMMANDS } from "./aggregate.js";
export type { EventMetadata, RecordedEvent } from "./batch.js";
export {
  decodeBatch,
  decodeStored,
  encodeBatch,
  eventTypesHeaders,
  isAppended,
  SERVER_COPY_HEADER,
} from "./batch.js";
export type { EventCodec, EventOf, MessageClass } from "./codec.js";
export { eventCodec } from "./codec.js";
export type { CommandHandlerOptions, CommandResult } from "./command-handler.js";
export { CommandHandler } from "./command-handler.js";
export type { Decider } from "./decider.js";
export { fold } from "./decider.js";
export type { DeciderSpecification } from "./decider-spec.js";
export { deciderSpec } from "./decider-spec.js";
export type { DomainErrorCode } from "./errors.js";
export {
  ConcurrencyError,
  DecodeError,
  DOMAIN_ERROR_CODES,
  DomainError,
  EventStoreError,
  isConcurrencyError,
  isDomainError,
  isDomainErrorCode,
  isRetryable,
  RetriesExhaustedError,
} from "./errors.js";
export type { AggregateEvents, AppendOptions, AppendResult } from "./event-store.js";
export { EVENT_TYPES_HEADER, EventStore, messageIdFor } from "./event-store.js";
export { patiently, SETUP_ATTEMPTS } from "./patiently.js";
export type { PostgresProjection } from "./postgres-projection.js";
export {
  migrateCheckpoints,
  readCheckpoint,
  resetPostgresProjection,
  runPostgresProjection,
} from "./postgres-projection.js";
export type { ProjectedMessage, ProjectionOptions, RunningProjection } from "./projection.js";
export { ensureDurable, runProjection } from "./projection.js";
export type { PublishAck } from "./publisher.js";
export { JetStreamPublisher, PublishRejectedError, PublishTimeoutError } from "./publisher.js";
export type { OrderedReaderOptions, StreamMessage } from "./reader.js";
export { OrderedReader, plantedDelivery } from "./reader.js";
export type { Replay, ReplayOptions, ReplayProgress } from "./replay.js";
export { replay } from "./replay.js";
export type { Snapshot, SnapshotCodec } from "./snapshots.js";
export { jsonSnapshots, SnapshotStore } from "./snapshots.js";
export type { StoredMessageQuery } from "./stored-message.js";
export { getStoredMessage, limitLeaderReads, plantedStored } from "./stored-message.js";
export type { AggregateStream } from "./stream.js";
export { aggregateIdOf, aggregateSubject, defineStream, prefixedStream } from "./stream.js";
export { ensureStream, streamConfig } from "./streams-setup.js";
