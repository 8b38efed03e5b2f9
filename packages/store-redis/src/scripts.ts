// The Lua scripts of the Redis limiter, loaded once per connection and called by hash (ioredis
// defineCommand → EVALSHA, falling back to EVAL after a SCRIPT FLUSH or a new server).
//
// Numbers stay strings wherever they can exceed 2^53 or 14 digits (cjson and tostring print doubles
// with 14 significant digits): counters are compared and returned as the strings Redis stores.

/**
 * check — one atomic step for every limit of a check. The decisions are core's, made by the caller
 * from the values it expects; the script checks that every expected value is the stored one
 * (compare-and-set) and only then applies the writes. Positional arguments and as few of them as it
 * takes (each costs Redis a Lua string), no JSON to decode: the common check is one MGET (version,
 * markers, rate states), one HMGET and one HGET per quota, and the writes.
 *
 *   KEYS: definitions version, the markers of the subjects involved (nm; the customer's first: its
 *         expiry index and reservations' x keys are named after it), per rate limit its state (nr), per
 *         quota its counter and its holds (nq), per concurrency limit its leases (nc), and when it
 *         reserves, per hold to add its hash (nh)
 *   ARGV: now, expected version, the counts nm, nr, nq, nc (one string, 3 digits each), then per rate limit: expected state, new state
 *         (the expected one unless admitted), ttl ms; per quota: field, expected used, expected held,
 *         "bucket ms:window ms" ("" for calendar periods); per concurrency limit: expected count,
 *         expected first expiry; and when it reserves: reservation id, its body (JSON), its ttl ms, its
 *         expiry, nh, per concurrency limit the lease's expiry, per hold its field and amount
 *
 * Replies:
 *   {"DEFS", version}      the limit definitions changed since the caller's book was loaded
 *   {"REBUILD", i…}        these markers (1-based, in KEYS order) are missing (a new subject, or Redis
 *                          was flushed or replaced): rebuild those subjects first
 *   {"LOAD", i…}           these quota counters are not loaded: load them from the durable store
 *   {"STALE", v…}          the actual values (per rate limit its state, per quota used and held, per
 *                          concurrency limit count and first expiry): decide again with them
 *   {"OK", id…}            applied; the ids of reservations that expired here
 *
 * The customer's marker holds the earliest expiry in its expiry index ("" when it is empty; it may be
 * earlier than the real one, never later), so the index is only read when a reservation may be due.
 * (tonumber costs about half a Redis call's instructions: the common check converts no number.)
 * A loaded counter always has its "_asof" field, so reading it with the group's field tells a missing
 * counter apart in the same call.
 */
export const CHECK_LUA = `
local now = ARGV[1]
local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12 = string.byte(ARGV[3], 1, 12)
local nm = b1 * 100 + b2 * 10 + b3 - 5328
local nr = b4 * 100 + b5 * 10 + b6 - 5328
local nq = b7 * 100 + b8 * 10 + b9 - 5328
local nc = b10 * 100 + b11 * 10 + b12 - 5328
local head = redis.call('MGET', unpack(KEYS, 1, 1 + nm + nr))
local version = head[1] or '0'
if version ~= ARGV[2] then return {'DEFS', version} end
local unmarked = nil
for i = 1, nm do
  if not head[i + 1] then
    unmarked = unmarked or {'REBUILD'}
    unmarked[#unmarked + 1] = i
  end
end
if unmarked then return unmarked end
-- The customer's keys: its marker is "<prefix>:<tag>:m:".
local base = nil
local reply = {'OK'}
local earliest = head[2]
if earliest ~= '' and tonumber(earliest) <= tonumber(now) then
  base = string.sub(KEYS[2], 1, -3)
  -- Reservations of this customer past their TTL free their holds and slots first.
  local ek = base .. 'e:'
  local due = redis.call('ZRANGEBYSCORE', ek, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    local xkey = base .. 'x:' .. id
    local body = redis.call('GET', xkey)
    if body then
      local x = cjson.decode(body)
      for _, h in ipairs(x.h) do redis.call('HINCRBY', h[1], h[2], '-' .. h[3]) end
      for _, l in ipairs(x.l) do redis.call('ZREM', l, id) end
      redis.call('DEL', xkey)
      reply[#reply + 1] = id
    end
    redis.call('ZREM', ek, id)
  end
  earliest = redis.call('ZRANGE', ek, 0, 0, 'WITHSCORES')[2] or ''
  redis.call('SET', KEYS[2], earliest)
end
local actual = {'STALE'}
local stale = false
for i = 1, nr do
  local st = head[1 + nm + i] or ''
  actual[i + 1] = st
  if st ~= ARGV[3 * i + 1] then stale = true end
end
local kq, aq = 1 + nm + nr, 3 + 3 * nr
local missing = nil
for i = 1, nq do
  local counter = KEYS[kq + 2 * i - 1]
  local a = aq + 4 * (i - 1)
  local field = ARGV[a + 1]
  local used
  if ARGV[a + 4] ~= '' then
    -- Rolling: the buckets (fields group .. "\\3" .. start) that overlap (now - window, now].
    local all = redis.call('HGETALL', counter)
    if #all == 0 then
      missing = missing or {'LOAD'}
      missing[#missing + 1] = i
    else
      local bucketMs, windowMs = string.match(ARGV[a + 4], '^(%d+):(%d+)$')
      local t = tonumber(now)
      bucketMs, windowMs = tonumber(bucketMs), tonumber(windowMs)
      local prefix = field .. '\\3'
      local live = {}
      for j = 1, #all, 2 do
        local f = all[j]
        if string.sub(f, 1, #prefix) == prefix then
          local b = string.sub(f, #prefix + 1)
          if tonumber(b) + bucketMs > t - windowMs then live[#live + 1] = {tonumber(b), b, all[j + 1]}
          else redis.call('HDEL', counter, f) end
        end
      end
      table.sort(live, function(x, y) return x[1] < y[1] end)
      local parts = {}
      for j, l in ipairs(live) do parts[j] = l[2] .. ':' .. l[3] end
      -- The live buckets ("start:amount;…", oldest first): the caller sums them and finds when
      -- enough of them age out.
      used = table.concat(parts, ';')
    end
  else
    local v = redis.call('HMGET', counter, '_asof', field)
    if not v[1] then
      missing = missing or {'LOAD'}
      missing[#missing + 1] = i
    else
      used = v[2] or '0'
    end
  end
  if not missing then
    local held = redis.call('HGET', KEYS[kq + 2 * i], field) or '0'
    actual[#actual + 1] = used
    actual[#actual + 1] = held
    if used ~= ARGV[a + 2] or held ~= ARGV[a + 3] then stale = true end
  end
end
if missing then return missing end
local kc, ac = kq + 2 * nq, aq + 4 * nq
for i = 1, nc do
  local key = KEYS[kc + i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local n = tostring(redis.call('ZCARD', key))
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or ''
  actual[#actual + 1] = n
  actual[#actual + 1] = first
  if n ~= ARGV[ac + 2 * i - 1] or first ~= ARGV[ac + 2 * i] then stale = true end
end
if stale then return actual end
for i = 1, nr do
  local a = 3 * i + 1
  if ARGV[a + 1] ~= ARGV[a] then redis.call('SET', KEYS[1 + nm + i], ARGV[a + 1], 'PX', ARGV[a + 2]) end
end
local ax = ac + 2 * nc
if #ARGV > ax then
  local id = ARGV[ax + 1]
  base = base or string.sub(KEYS[2], 1, -3)
  local nh = tonumber(ARGV[ax + 5])
  local al, ah = ax + 5, ax + 5 + nc
  for i = 1, nh do redis.call('HINCRBY', KEYS[kc + nc + i], ARGV[ah + 2 * i - 1], ARGV[ah + 2 * i]) end
  for i = 1, nc do redis.call('ZADD', KEYS[kc + i], ARGV[al + i], id) end
  redis.call('SET', base .. 'x:' .. id, ARGV[ax + 2], 'PX', ARGV[ax + 3])
  redis.call('ZADD', base .. 'e:', ARGV[ax + 4], id)
  local at = ARGV[ax + 4]
  if earliest == '' or tonumber(at) < tonumber(earliest) then redis.call('SET', KEYS[2], at) end
end
return reply
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
