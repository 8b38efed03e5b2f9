#!/usr/bin/env bash
# The OpenAI-compatible proxy: end users call Tollgate with their own key; Tollgate checks their
# limits, forwards to OpenAI with the workspace's provider key and meters the usage.
#
#   TOLLGATE_OPENAI_API_KEY=sk-... npx tollgate serve          # or proxy.openai in tollgate.yaml
#   TOLLGATE_URL=http://127.0.0.1:8787 TOLLGATE_API_KEY=tg_... bash examples/sdk/proxy.sh
set -euo pipefail
: "${TOLLGATE_URL:?}" "${TOLLGATE_API_KEY:?}"
auth=(-H "Authorization: Bearer $TOLLGATE_API_KEY" -H "Content-Type: application/json")

curl -sf -X PUT "$TOLLGATE_URL/v1/customers/acme" "${auth[@]}" -d '{"name": "Acme Inc."}' >/dev/null
# An end-user key for the customer (shown once).
key=$(curl -sf -X POST "$TOLLGATE_URL/v1/customers/acme/keys" "${auth[@]}" -d '{"name": "acme app"}' |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')

# Any OpenAI client works: base URL $TOLLGATE_URL/proxy/openai/v1, API key = the end-user key.
curl -sS "$TOLLGATE_URL/proxy/openai/v1/chat/completions" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 20}'
echo
curl -sS "$TOLLGATE_URL/v1/usage?customer=acme&group_by=model" "${auth[@]}"
echo
