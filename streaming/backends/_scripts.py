"""Lua scripts the Redis backend runs: each one is atomic on the server.

An entry is named by its id and the digest of its fields (`entry_digest`): after a
failover two servers can each hold an entry with the same id (both masters wrote in the
same millisecond), so "the log still holds what I read" compares both.
"""

import hashlib
from collections.abc import Sequence


def entry_digest(fields: Sequence[bytes]) -> str:
    """The digest of an entry's fields (names and values, in order), as the scripts'
    ``digest`` computes it."""
    return hashlib.sha1(b"\0".join(fields)).hexdigest()


def payload_digest(payload: bytes) -> str:
    """The digest of an item's entry, from the payload the publish script writes."""
    return hashlib.sha1(b"d\0" + payload).hexdigest()


# Ids are compared as numbers: "<ms>-<seq>" split in two. `holds` takes an entry's id and
# digest ('' when the caller does not know it: then the id alone decides).
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
local function digest(entry)
  return redis.sha1hex(table.concat(entry[2], '\\0'))
end
local function holds(stream, id, sum)
  local found = redis.call('XRANGE', stream, id, id)
  if #found > 0 then return sum == '' or digest(found[1]) == sum end
  -- Trimmed by age or length (older than the first entry) is not lost.
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  return #first > 0 and before(id, first[1][1])
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
# Returns the id and digest of the entry the new ones follow ('' and '' if the stream is
# empty), so that a caller that has read up to that very entry can apply its items
# without reading them back, then the first new id and how many were added. The first id
# is Redis's own (`*`); the others are in its millisecond, one after another (`<ms>-*`),
# so the caller knows every id from these two (a batch of a thousand takes more than a
# millisecond to add).
PUBLISH = (
    _ID_HELPERS
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('EPOCH the log started a new epoch; resync first')
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local first = redis.call('XADD', KEYS[1], '*', 'd', ARGV[4])
local same_ms = string.sub(first, 1, string.find(first, '-', 1, true)) .. '*'
for i = 5, #ARGV do
  redis.call('XADD', KEYS[1], same_ms, 'd', ARGV[i])
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[3])
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
return {last[1] and last[1][1] or '', last[1] and digest(last[1]) or '', first, #ARGV - 3}
"""
)

STARTED_NONE, STARTED_NEW, STARTED_LOST, STARTED_DIVERGED = 0, 1, 2, 3
"""How `ENSURE_EPOCH` found the log: as it was; new (nothing there, nothing seen); with its
history lost (no epoch key, or the stream behind what the caller saw); diverged (the stream
went on, but without the last entry the caller read: a failover dropped it)."""

# KEYS: stream, epoch. ARGV: the last id the caller has seen ('0-0' if none), and the
# digest of that entry ('' if unknown).
# Returns {epoch, started}: the current epoch (the id of its marker entry), and one of the
# STARTED_* values; unless STARTED_NONE, it started an epoch. A new epoch's marker id is
# past every id the caller saw, so ids never go backwards.
ENSURE_EPOCH = (
    _ID_HELPERS
    + """
local epoch = redis.call('GET', KEYS[2])
local last = last_generated(KEYS[1])
local behind = before(last, ARGV[1])
local kept = ARGV[1] == '0-0' or behind or holds(KEYS[1], ARGV[1], ARGV[2])
if epoch and not behind and kept then
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
if epoch and not behind then
  return {marker, 3}
end
return {marker, 2}
"""
)

# KEYS: stream. ARGV: the last id the caller read ('0-0' if none) and that entry's digest
# ('' if unknown). 1 if the stream still holds that entry (or trimmed it by age or
# length), 0 if the log lost it: it is behind that id, went on without it, or holds
# another entry under it. Cheap enough to run before every read of the tail.
HOLDS = (
    _ID_HELPERS
    + """
if ARGV[1] == '0-0' then return 1 end
if before(last_generated(KEYS[1]), ARGV[1]) then return 0 end
return holds(KEYS[1], ARGV[1], ARGV[2]) and 1 or 0
"""
)
