#!/usr/bin/env bash
# Tollgate in four calls: define a meter, record three LLM calls, read usage back per hour and model.
#
#   tollgate serve                                  # prints an admin key on its first start
#   export TOLLGATE_API_KEY=tg_...                  # that key
#   bash examples/walkthrough.sh
#
# TOLLGATE_URL defaults to http://127.0.0.1:8787. Needs bash and curl (7.76+). Safe to run twice: the
# meter is upserted and the events carry ids, so a second run records them as duplicates.
set -euo pipefail

URL="${TOLLGATE_URL:-http://127.0.0.1:8787}"
KEY="${TOLLGATE_API_KEY:?set TOLLGATE_API_KEY to an admin key (printed by the first tollgate serve)}"

# api METHOD PATH [JSON]: one call, the response body on stdout; a non-2xx answer ends the script.
api() {
  local args=(--silent --show-error --fail-with-body -X "$1" "$URL$2" -H "Authorization: Bearer $KEY")
  if [ $# -ge 3 ]; then args+=(-H "Content-Type: application/json" --data "$3"); fi
  curl "${args[@]}"
  echo
}

echo "== 1. the server is up"
curl --silent --show-error --fail-with-body "$URL/health"
echo

echo "== 2. a meter: total tokens (prompt + completion) of LLM calls"
api PUT /v1/meters/tokens '{
  "event_type": "llm.completion",
  "aggregation": "sum",
  "value": ["tokens_in", "tokens_out"]
}'

echo "== 3. three LLM calls of customer acme (ids make retries safe)"
api POST /v1/events '{"events": [
  {"id": "walkthrough_1", "type": "llm.completion", "customer": "acme",
   "timestamp": "2026-01-15T10:05:00Z",
   "values": {"tokens_in": 1200, "tokens_out": 300}, "dimensions": {"model": "gpt-4o"}},
  {"id": "walkthrough_2", "type": "llm.completion", "customer": "acme",
   "timestamp": "2026-01-15T10:40:00Z",
   "values": {"tokens_in": 800, "tokens_out": 200}, "dimensions": {"model": "gpt-4o-mini"}},
  {"id": "walkthrough_3", "type": "llm.completion", "customer": "acme",
   "timestamp": "2026-01-15T11:15:00Z",
   "values": {"tokens_in": 500, "tokens_out": 100}, "dimensions": {"model": "gpt-4o"}}
]}'

echo "== 4. acme's tokens per hour and model"
# 10:00 gpt-4o 1500, 10:00 gpt-4o-mini 1000, 11:00 gpt-4o 600
api GET "/v1/meters/tokens/query?customer=acme&window=hour&group_by=model"
