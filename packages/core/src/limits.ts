/**
 * Every bound Tollgate enforces, in one place, units last (TigerBeetle's constants.zig style).
 * A request that crosses one of these is refused with INVALID_REQUEST / PAYLOAD_TOO_LARGE; nothing
 * in the system is unbounded.
 */
export const bounds = {
  /** Events in one POST /v1/events call. */
  batchEventsMax: 1_000,
  /** Request body size of any API call. */
  bodyBytesMax: 1_048_576,
  /** Length of any id (event, customer, plan, meter, limit, key). */
  idLengthMax: 256,
  /** Length of an event type. */
  eventTypeLengthMax: 128,
  /** Number of entries in an event's `values`. */
  eventValuesMax: 64,
  /** Number of entries in an event's `dimensions`. */
  eventDimensionsMax: 64,
  /** Length of a value or dimension name. */
  fieldNameLengthMax: 64,
  /** Length of a dimension value. */
  dimensionValueLengthMax: 1_024,
  /** Largest usage amount: JSON numbers stay exact up to 2^53-1. */
  amountMax: Number.MAX_SAFE_INTEGER,
  /** Size of a customer's metadata object, serialized. */
  metadataBytesMax: 16_384,
  /** Items per page of any list. */
  pageSizeMax: 500,
  /** Items per page when the caller gives no `limit`. */
  pageSizeDefault: 100,
  /** Windows one meter query may return. */
  queryWindowsMax: 100_000,
  /** Dimensions a meter query may group by. */
  groupByMax: 8,
  /** Events that wait for one group commit. */
  groupCommitEventsMax: 20_000,
  /** How long a shutdown waits for in-flight requests. */
  shutdownGraceMs: 10_000,
} as const;
