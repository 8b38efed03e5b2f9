import { bounds } from "@tollgate/core";
import { type TSchema, Type } from "@sinclair/typebox";

/** Request schemas: one source for validation, types and /openapi.json. */

export const Id = Type.String({ minLength: 1, maxLength: bounds.idLengthMax, pattern: "^[^\\s/?#]+$" });
const FieldName = Type.String({
  minLength: 1,
  maxLength: bounds.fieldNameLengthMax,
  pattern: "^[A-Za-z_][A-Za-z0-9_.:-]*$",
});
export const Amount = Type.Integer({ minimum: 0, maximum: bounds.amountMax });
export const Instant = Type.String({ format: "date-time", maxLength: 40 });

const fieldMap = <T extends TSchema>(value: T, maxProperties: number) =>
  Type.Record(FieldName, value, {
    maxProperties,
    propertyNames: { minLength: 1, maxLength: bounds.fieldNameLengthMax, pattern: "^[A-Za-z_][A-Za-z0-9_.:-]*$" },
  });

export const Dimensions = fieldMap(
  Type.String({ maxLength: bounds.dimensionValueLengthMax }),
  bounds.eventDimensionsMax,
);
export const Values = fieldMap(Amount, bounds.eventValuesMax);

export const Event = Type.Object(
  {
    id: Id,
    type: Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax }),
    customer: Id,
    timestamp: Type.Optional(Instant),
    values: Type.Optional(Values),
    dimensions: Type.Optional(Dimensions),
  },
  { additionalProperties: false },
);

export const EventsBody = Type.Object(
  { events: Type.Array(Event, { minItems: 1, maxItems: bounds.batchEventsMax }) },
  { additionalProperties: false },
);

export const IdParams = Type.Object({ id: Id });

export const PageQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,4}$" })),
  },
  { additionalProperties: false },
);

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const CustomerBody = Type.Object(
  {
    name: Type.Optional(Nullable(Type.String({ maxLength: 512 }))),
    plan: Type.Optional(Nullable(Id)),
    timezone: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 64 }))),
    billing_anchor: Type.Optional(Nullable(Instant)),
    metadata: Type.Optional(Nullable(Type.Object({}, { additionalProperties: true, maxProperties: 256 }))),
  },
  { additionalProperties: false },
);

export const MeterBody = Type.Object(
  {
    event_type: Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax }),
    aggregation: Type.Union([
      Type.Literal("sum"),
      Type.Literal("count"),
      Type.Literal("max"),
      Type.Literal("latest"),
      Type.Literal("unique_count"),
    ]),
    value: Type.Optional(Type.Union([FieldName, Type.Array(FieldName, { minItems: 1, maxItems: 16 })])),
    filter: Type.Optional(Dimensions),
  },
  { additionalProperties: false },
);

export const MeterQuery = Type.Object(
  {
    customer: Type.Optional(Id),
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    window: Type.Optional(
      Type.Union([Type.Literal("hour"), Type.Literal("day"), Type.Literal("week"), Type.Literal("month")]),
    ),
    group_by: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

const LimitLike = Type.Object({ id: Id }, { additionalProperties: true });

export const PlanBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512 }),
    retention_days: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 36_500 }))),
    limits: Type.Optional(Type.Array(LimitLike, { maxItems: 256 })),
    rate_limits: Type.Optional(Type.Array(LimitLike, { maxItems: 256 })),
    concurrency_limits: Type.Optional(Type.Array(LimitLike, { maxItems: 256 })),
  },
  { additionalProperties: false },
);

export const ApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    role: Type.Union([Type.Literal("admin"), Type.Literal("service")]),
  },
  { additionalProperties: false },
);

export const CustomerKeyBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
);

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Object({}, { additionalProperties: true })),
    status: Type.Integer(),
  }),
});
