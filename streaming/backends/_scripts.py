"""Lua scripts the Redis backend runs: each one is atomic on the server."""

# Ids are compared as numbers: "<ms>-<seq>" split in two.
_ID_HELPERS = """
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function before(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function last_generated(stream)
  if redis.call('EXISTS', stream) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
"""

# KEYS: stream, epoch. ARGV: the epoch the caller writes in, MINID for trimming, MAXLEN,
# then one payload per item. Refuses to write into another epoch: the caller must resync.
PUBLISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('EPOCH the log started a new epoch; resync first')
end
local ids = {}
for i = 4, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'd', ARGV[i])
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
return ids
"""

# KEYS: stream, epoch. ARGV: the last id the caller has seen ('0-0' if none).
# Returns {epoch, started}: the current epoch (the id of its marker entry), and how this
# call found the log: 0 as it was, 1 new (nothing there, nothing seen), 2 with its history
# lost (no epoch, or the stream behind what the caller saw): then it started an epoch. A
# new epoch's marker id is past every id the caller saw, so ids never go backwards.
ENSURE_EPOCH = (
    _ID_HELPERS
    + """
local epoch = redis.call('GET', KEYS[2])
local last = last_generated(KEYS[1])
if epoch and not before(last, ARGV[1]) then
  return {epoch, 0}
end
local marker = redis.call('XADD', KEYS[1], '*', 'epoch', '1')
if before(marker, ARGV[1]) or marker == ARGV[1] then
  redis.call('XDEL', KEYS[1], marker)
  redis.call('XSETID', KEYS[1], ARGV[1])
  marker = redis.call('XADD', KEYS[1], '*', 'epoch', '1')
end
redis.call('SET', KEYS[2], marker)
if not epoch and last == '0-0' and ARGV[1] == '0-0' then
  return {marker, 1}
end
return {marker, 2}
"""
)
