import { type TSchema, Type } from "@sinclair/typebox";
import { bounds } from "@tollgate/core";

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
    propertyNames: {
      minLength: 1,
      maxLength: bounds.fieldNameLengthMax,
      pattern: "^[A-Za-z_][A-Za-z0-9_.:-]*$",
    },
  });

export const Dimensions = fieldMap(
  Type.String({ maxLength: bounds.dimensionValueLengthMax }),
  bounds.eventDimensionsMax,
);
/** Money on the API: a decimal USD string, exact ("0.0045"). */
export const Money = Type.String({ pattern: "^\\d{1,16}(\\.\\d{1,15})?$", maxLength: 40 });
/** Usage amounts; `cost`, if the event brings its own, is money (a decimal USD string). */
export const Values = Type.Unsafe<Record<string, number>>(
  Type.Object(
    { cost: Type.Optional(Money) },
    {
      additionalProperties: Amount,
      maxProperties: bounds.eventValuesMax,
      propertyNames: {
        minLength: 1,
        maxLength: bounds.fieldNameLengthMax,
        pattern: "^[A-Za-z_][A-Za-z0-9_.:-]*$",
      },
    },
  ),
);

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

// ---- limits -------------------------------------------------------------------------------------

const Enforcement = Type.Union([Type.Literal("hard"), Type.Literal("soft"), Type.Literal("shadow")]);
const FailMode = Type.Union([Type.Literal("open"), Type.Literal("closed")]);
const RateScope = Type.Union([Type.Literal("key"), Type.Literal("customer"), Type.Literal("workspace")]);
const Period = Type.Union([
  Type.Literal("hour"),
  Type.Literal("day"),
  Type.Literal("week"),
  Type.Literal("month"),
  Type.Literal("all_time"),
  Type.Object(
    { rolling_seconds: Type.Integer({ minimum: 1, maximum: 366 * 86_400 }) },
    { additionalProperties: false },
  ),
]);
const Owner = { plan: Type.Optional(Nullable(Id)), customer: Type.Optional(Nullable(Id)) };

const quotaFields = {
  meter: Id,
  /** Meter units; for a meter over `cost`, money: a decimal USD string ("25.00"). */
  amount: Type.Union([Amount, Money]),
  period: Period,
  group_by: Type.Optional(Type.Array(FieldName, { maxItems: bounds.groupByMax, uniqueItems: true })),
  filter: Type.Optional(Dimensions),
  enforcement: Type.Optional(Enforcement),
  thresholds: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), { maxItems: 10 })),
  fail_mode: Type.Optional(FailMode),
  /** A customer's own limit only: a temporary raise until this instant (docs/plans.md). */
  expires_at: Type.Optional(Nullable(Instant)),
};
const rateFields = {
  scope: RateScope,
  event_type: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax }))),
  value: Type.Optional(Nullable(FieldName)),
  limit: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
  window_seconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
  algorithm: Type.Optional(
    Type.Union([
      Type.Literal("sliding_window"),
      Type.Literal("token_bucket"),
      Type.Literal("fixed_window"),
      Type.Literal("gcra"),
      Type.Literal("burst"),
    ]),
  ),
  burst: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000_000 }))),
  enforcement: Type.Optional(Enforcement),
  fail_mode: Type.Optional(FailMode),
  expires_at: Type.Optional(Nullable(Instant)),
};
const concurrencyFields = {
  scope: RateScope,
  event_type: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax }))),
  max: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  lease_ttl_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
  enforcement: Type.Optional(Enforcement),
  fail_mode: Type.Optional(FailMode),
  expires_at: Type.Optional(Nullable(Instant)),
};

export const QuotaBody = Type.Object({ ...Owner, ...quotaFields }, { additionalProperties: false });
export const RateLimitBody = Type.Object({ ...Owner, ...rateFields }, { additionalProperties: false });
export const ConcurrencyLimitBody = Type.Object(
  { ...Owner, ...concurrencyFields },
  { additionalProperties: false },
);
export const PlanQuota = Type.Object({ id: Id, ...quotaFields }, { additionalProperties: false });
export const PlanRateLimit = Type.Object({ id: Id, ...rateFields }, { additionalProperties: false });
export const PlanConcurrencyLimit = Type.Object(
  { id: Id, ...concurrencyFields },
  { additionalProperties: false },
);
export const OwnerQuery = Type.Object(
  { plan: Type.Optional(Id), customer: Type.Optional(Id) },
  { additionalProperties: false },
);

const CheckEvent = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax }),
    customer: Id,
    values: Type.Optional(Values),
    dimensions: Type.Optional(Dimensions),
  },
  { additionalProperties: false },
);
export const CheckBody = Type.Object(
  {
    event: CheckEvent,
    reserve: Type.Optional(
      Type.Object(
        { ttl_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })) },
        { additionalProperties: false },
      ),
    ),
    /** Features of the customer's plan the request needs (feature gates, docs/plans.md). */
    features: Type.Optional(Type.Array(FieldName, { maxItems: 16, uniqueItems: true })),
  },
  { additionalProperties: false },
);
export const CommitBody = Type.Object(
  {
    event: Type.Optional(
      Type.Object(
        {
          id: Type.Optional(Id),
          type: Type.Optional(Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax })),
          customer: Type.Optional(Id),
          timestamp: Type.Optional(Instant),
          values: Type.Optional(Values),
          dimensions: Type.Optional(Dimensions),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const PlanBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512 }),
    retention_days: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 36_500 }))),
    limits: Type.Optional(Type.Array(PlanQuota, { maxItems: 256 })),
    rate_limits: Type.Optional(Type.Array(PlanRateLimit, { maxItems: 256 })),
    concurrency_limits: Type.Optional(Type.Array(PlanConcurrencyLimit, { maxItems: 256 })),
    /** Feature gates: `{"agent_keys": true}`; a feature not listed true is not included. */
    features: Type.Optional(Nullable(Type.Record(FieldName, Type.Boolean(), { maxProperties: 256 }))),
    /** The model classes the plan includes (absent or null: every model). */
    model_classes: Type.Optional(Nullable(Type.Array(FieldName, { maxItems: 64, uniqueItems: true }))),
    /** Included usage per meter per billing period, and the USD price of each unit past it. */
    overage: Type.Optional(
      Nullable(
        Type.Array(
          Type.Object(
            {
              meter: Id,
              included: Type.Union([Amount, Money]),
              unit_price: Type.String({ pattern: "^\\d{1,12}(\\.\\d{1,12})?$", maxLength: 32 }),
            },
            { additionalProperties: false },
          ),
          { maxItems: 64 },
        ),
      ),
    ),
  },
  { additionalProperties: false },
);

// ---- reports (issue #5) ------------------------------------------------------------------------

const Granularity = Type.Union([
  Type.Literal("hour"),
  Type.Literal("day"),
  Type.Literal("week"),
  Type.Literal("month"),
]);
const ReportFilters = {
  from: Type.Optional(Instant),
  to: Type.Optional(Instant),
  customer: Type.Optional(Id),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: bounds.eventTypeLengthMax })),
  model: Type.Optional(Type.String({ maxLength: bounds.dimensionValueLengthMax })),
  workflow: Type.Optional(Type.String({ maxLength: bounds.dimensionValueLengthMax })),
  key: Type.Optional(Type.String({ maxLength: bounds.dimensionValueLengthMax })),
  feature: Type.Optional(Type.String({ maxLength: bounds.dimensionValueLengthMax })),
  filter: Type.Optional(Type.String({ maxLength: 4096 })),
};

export const UsageQuery = Type.Object(
  {
    ...ReportFilters,
    granularity: Type.Optional(Granularity),
    group_by: Type.Optional(Type.String({ maxLength: 512 })),
    format: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("csv")])),
  },
  { additionalProperties: false },
);

export const UsageSummaryQuery = Type.Object(
  {
    ...ReportFilters,
    view: Type.Union([
      Type.Literal("daily"),
      Type.Literal("weekly"),
      Type.Literal("monthly"),
      Type.Literal("models"),
      Type.Literal("workflows"),
    ]),
  },
  { additionalProperties: false },
);

export const WorkflowRunsQuery = Type.Object(
  {
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    customer: Type.Optional(Id),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,4}$" })),
  },
  { additionalProperties: false },
);

// ---- alerts and webhooks ------------------------------------------------------------------------

const AlertType = Type.Union([
  Type.Literal("limit.warning"),
  Type.Literal("limit.critical"),
  Type.Literal("limit.exceeded"),
  Type.Literal("balance.low"),
  Type.Literal("usage.summary"),
]);
export const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, format: "uri" }),
    events: Type.Array(AlertType, { minItems: 1, maxItems: 5, uniqueItems: true }),
    description: Type.Optional(Nullable(Type.String({ maxLength: 512 }))),
  },
  { additionalProperties: false },
);
export const RotateSecretBody = Type.Object(
  {
    /** How long the previous secret keeps signing (a second signature). @default 86400 */
    previous_secret_ttl_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400 })),
  },
  { additionalProperties: false },
);
export const DeliveryParams = Type.Object({ id: Id, delivery_id: Id });
export const DeliveriesQuery = Type.Object(
  {
    state: Type.Optional(
      Type.Union([
        Type.Literal("pending"),
        Type.Literal("delivered"),
        Type.Literal("failed"),
        Type.Literal("cancelled"),
      ]),
    ),
    cursor: Type.Optional(Type.String({ maxLength: 32 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,4}$" })),
  },
  { additionalProperties: false },
);
export const AlertsQuery = Type.Object(
  {
    type: Type.Optional(AlertType),
    customer: Type.Optional(Id),
    cursor: Type.Optional(Type.String({ maxLength: 32 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,4}$" })),
  },
  { additionalProperties: false },
);
