// The Lua scripts of the Redis limiter, loaded once per connection and called by hash (ioredis
// defineCommand → EVALSHA, falling back to EVAL after a SCRIPT FLUSH or a new server).
//
// Numbers stay strings wherever they can exceed 2^53 or 14 digits (cjson and tostring print doubles
// with 14 significant digits): counters are compared and returned as the strings Redis stores.

/**
 * check(KEYS: markers…, then every key the spec names; ARGV: now, apply, spec JSON)
 *
 * One atomic step for every limit of a check. The decisions are core's, made by the caller from the
 * values it expects; the script checks that every expected value is the stored one (compare-and-set)
 * and only then applies the writes. Replies:
 *   {"DEFS", version}      the limit definitions changed since the caller's book was loaded
 *   {"REBUILD", json}      these markers (positions in spec.m) are missing (a new subject, or Redis
 *                          was flushed or replaced): rebuild those subjects first
 *   {"LOAD", json}         these quota counters are not loaded: load them from the durable store
 *   {"STALE", json}        the actual values; decide again with them
 *   {"OK", json}           applied (if apply = 1); json lists reservations that expired here
 */
export const CHECK_LUA = `
local now = tonumber(ARGV[1])
local spec = cjson.decode(ARGV[3])
local version = redis.call('GET', KEYS[spec.v[1]]) or '0'
if version ~= spec.v[2] then return {'DEFS', version} end
local unmarked = {}
for i, m in ipairs(spec.m) do
  if redis.call('EXISTS', KEYS[m]) == 0 then unmarked[#unmarked + 1] = i end
end
if #unmarked > 0 then return {'REBUILD', cjson.encode(unmarked)} end
-- Reservations of these subjects past their TTL free their holds and slots first.
local expired = {}
for _, e in ipairs(spec.e) do
  local due = redis.call('ZRANGEBYSCORE', KEYS[e], '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    local xkey = spec.xp .. id
    local body = redis.call('GET', xkey)
    if body then
      local x = cjson.decode(body)
      for _, h in ipairs(x.h) do redis.call('HINCRBY', h[1], h[2], '-' .. h[3]) end
      for _, l in ipairs(x.l) do redis.call('ZREM', l, id) end
      redis.call('DEL', xkey)
      expired[#expired + 1] = id
    end
    redis.call('ZREM', KEYS[e], id)
  end
end
local missing = {}
for i, q in ipairs(spec.q) do
  if redis.call('EXISTS', KEYS[q[1]]) == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'LOAD', cjson.encode(missing)} end
local actual = {q = {}, c = {}, r = {}}
local stale = false
for i, q in ipairs(spec.q) do
  local used
  if q[6] then
    -- Rolling: the buckets (fields group .. "\\3" .. start) that overlap (now - window, now].
    local all = redis.call('HGETALL', KEYS[q[1]])
    local prefix = q[3] .. '\\3'
    local live = {}
    for j = 1, #all, 2 do
      local f = all[j]
      if string.sub(f, 1, #prefix) == prefix then
        local b = string.sub(f, #prefix + 1)
        if tonumber(b) + q[6] > now - q[7] then live[#live + 1] = {tonumber(b), b, all[j + 1]}
        else redis.call('HDEL', KEYS[q[1]], f) end
      end
    end
    table.sort(live, function(x, y) return x[1] < y[1] end)
    local parts = {}
    for j, l in ipairs(live) do parts[j] = l[2] .. ':' .. l[3] end
    -- The live buckets ("start:amount;…", oldest first): the caller sums them and finds when
    -- enough of them age out.
    used = table.concat(parts, ';')
  else
    used = redis.call('HGET', KEYS[q[1]], q[3]) or '0'
  end
  local held = redis.call('HGET', KEYS[q[2]], q[3]) or '0'
  actual.q[i] = {used, held}
  if used ~= q[4] or held ~= q[5] then stale = true end
end
for i, c in ipairs(spec.c) do
  redis.call('ZREMRANGEBYSCORE', KEYS[c[1]], '-inf', now)
  local n = redis.call('ZCARD', KEYS[c[1]])
  local first = redis.call('ZRANGE', KEYS[c[1]], 0, 0, 'WITHSCORES')
  actual.c[i] = {tostring(n), first[2] or ''}
  if tostring(n) ~= c[2] or (first[2] or '') ~= c[3] then stale = true end
end
for i, r in ipairs(spec.r) do
  local st = redis.call('GET', KEYS[r[1]]) or ''
  actual.r[i] = st
  if st ~= r[2] then stale = true end
end
if stale then return {'STALE', cjson.encode(actual)} end
if ARGV[2] == '1' then
  for _, r in ipairs(spec.r) do
    if r[3] ~= r[2] then redis.call('SET', KEYS[r[1]], r[3], 'PX', r[4]) end
  end
  if spec.x then
    local x = {h = {}, l = {}}
    for _, h in ipairs(spec.h) do
      redis.call('HINCRBY', KEYS[h[1]], h[2], h[3])
      x.h[#x.h + 1] = {KEYS[h[1]], h[2], h[3]}
    end
    for _, l in ipairs(spec.l) do
      redis.call('ZADD', KEYS[l[1]], l[3], spec.x.id)
      x.l[#x.l + 1] = KEYS[l[1]]
    end
    redis.call('SET', KEYS[spec.x.key], cjson.encode(x), 'PX', spec.x.ttl)
    redis.call('ZADD', KEYS[spec.x.exp], spec.x.at, spec.x.id)
  end
end
return {'OK', cjson.encode(expired)}
`;

/**
 * finish(KEYS: the reservation's x key, its expiry index; ARGV: id) — frees a reservation's holds and
 * slots once, whichever process or path (commit, release, expiry) gets there first. Returns 1 if it
 * freed them, 0 if they were freed already.
 */
export const FINISH_LUA = `
local body = redis.call('GET', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not body then return 0 end
local x = cjson.decode(body)
for _, h in ipairs(x.h) do redis.call('HINCRBY', h[1], h[2], '-' .. h[3]) end
for _, l in ipairs(x.l) do redis.call('ZREM', l, ARGV[1]) end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * load(KEYS: counter hash, pending list; ARGV: asOfSeq, ttl ms, fields JSON {group: "amount"}) —
 * installs a counter loaded from a durable snapshot unless another process did first, then applies
 * the increments that arrived meanwhile from commits after the snapshot.
 */
export const LOAD_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local asof = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], '_asof', ARGV[1])
for g, v in pairs(cjson.decode(ARGV[3])) do redis.call('HINCRBY', KEYS[1], g, v) end
local pending = redis.call('LRANGE', KEYS[2], 0, -1)
for _, p in ipairs(pending) do
  local inc = cjson.decode(p)
  if tonumber(inc[1]) > asof then redis.call('HINCRBY', KEYS[1], inc[2], inc[3]) end
end
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * incr(KEYS: counter hash, pending list; ARGV: commitSeq, group, amount, pending ttl ms) — counts a
 * newly stored event once: in the counter if it is loaded from a snapshot that misses this commit,
 * in the pending list if it is not loaded (a load that is under way applies it).
 */
export const INCR_LUA = `
local asof = redis.call('HGET', KEYS[1], '_asof')
if asof then
  if tonumber(ARGV[1]) > tonumber(asof) then redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3]) end
  return 1
end
redis.call('RPUSH', KEYS[2], cjson.encode({ARGV[1], ARGV[2], ARGV[3]}))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
`;

/**
 * rebuild(KEYS: marker; ARGV: JSON {x: [[key, body, ttl]], h: [[hash, field, amount]], l: [[zset, member, score]], e: [[zset, member, score]]})
 * — after a flush, puts back what active reservations (from the durable store) hold, once.
 */
export const REBUILD_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local s = cjson.decode(ARGV[1])
for _, x in ipairs(s.x) do redis.call('SET', x[1], x[2], 'PX', x[3]) end
for _, h in ipairs(s.h) do redis.call('HINCRBY', h[1], h[2], h[3]) end
for _, l in ipairs(s.l) do redis.call('ZADD', l[1], l[3], l[2]) end
for _, e in ipairs(s.e) do redis.call('ZADD', e[1], e[3], e[2]) end
redis.call('SET', KEYS[1], '1')
return 1
`;

/** cas(KEYS: rate state; ARGV: expected, new, ttl ms) — a forced rate-limit charge (reconcile at commit). */
export const CAS_LUA = `
local st = redis.call('GET', KEYS[1]) or ''
if st ~= ARGV[1] then return st end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return true
`;
