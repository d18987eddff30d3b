#pragma once
// The Lua scripts that make the room's changes atomic in Redis (rule 15). Each
// runs alone in Redis: a join checks and claims the name, and appends the
// event, with nothing in between; a message takes the next id and appends
// itself to the kept messages and to the events, so that the events' order
// is the ids' order.
//
// Keys, under a prefix (ARGV[1], "chat:"):
//   epoch         names the history the ids count in (rule 12)
//   msgid         the last message id
//   evseq         the last event's number: a reader that sees a number skipped
//                 missed an event (trimmed while it was away)
//   clock         the last stamp handed out: stamps never go back, even if
//                 Redis's clock does
//   events        stream of every event: k (j join, l leave, m message), s
//                 (number), n (name), v (join time, content), o (node), p
//                 (connection on that node), i (message id), t (stamp)
//   messages      stream of messages, entry id "<message id>-1": n, c, t
//   users         hash: name -> node "\n" connection "\n" join time
//   nodes         set of nodes with users; node:<id> the names of a node's users
//   lease:<id>    a node's liveness, kept alive by it (PX --node-timeout)
// The keys are built inside the scripts, so the room needs one Redis (not a
// sharded Redis Cluster).

namespace chat::cluster::scripts {

/// Shared by the scripts below.
inline constexpr const char* prelude = R"lua(
local p = ARGV[1]
local function stamp()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('GET', p .. 'clock') or '0')
  if now < last then now = last end
  local text = string.format('%.0f', now)
  redis.call('SET', p .. 'clock', text)
  return text
end
local function append(cap, kind, name, value, node, peer, id, ts)
  local seq = redis.call('INCR', p .. 'evseq')
  redis.call('XADD', p .. 'events', 'MAXLEN', '~', cap, '*', 'k', kind, 's', seq, 'n', name,
             'v', value, 'o', node, 'p', peer, 'i', id, 't', ts)
end
local function owned(name, node, peer)
  local owner = redis.call('HGET', p .. 'users', name)
  local tag = node .. '\n' .. peer .. '\n'
  return owner and string.sub(owner, 1, #tag) == tag
end
local function remove(cap, name, node, peer)
  redis.call('HDEL', p .. 'users', name)
  redis.call('SREM', p .. 'node:' .. node, name)
  append(cap, 'l', name, '', node, peer, 0, stamp())
end
)lua";

/// ARGV: prefix, epoch, events cap, node, connection, name, join time.
/// 'epoch' (the room is not the node's), 'lease' (the node is taken for
/// dead), 'taken', or 'ok' (the join is appended).
inline constexpr const char* join = R"lua(
if redis.call('GET', p .. 'epoch') ~= ARGV[2] then return 'epoch' end
if redis.call('EXISTS', p .. 'lease:' .. ARGV[4]) == 0 then return 'lease' end
if redis.call('HEXISTS', p .. 'users', ARGV[6]) == 1 then return 'taken' end
redis.call('HSET', p .. 'users', ARGV[6], ARGV[4] .. '\n' .. ARGV[5] .. '\n' .. ARGV[7])
redis.call('SADD', p .. 'node:' .. ARGV[4], ARGV[6])
redis.call('SADD', p .. 'nodes', ARGV[4])
append(ARGV[3], 'j', ARGV[6], ARGV[7], ARGV[4], ARGV[5], 0, stamp())
return 'ok'
)lua";

/// ARGV: prefix, epoch, events cap, node, connection, name, content, messages
/// kept. 'epoch', 'gone' (the user is no longer this connection's), or 'ok'.
inline constexpr const char* message = R"lua(
if redis.call('GET', p .. 'epoch') ~= ARGV[2] then return 'epoch' end
if not owned(ARGV[6], ARGV[4], ARGV[5]) then return 'gone' end
local id = redis.call('INCR', p .. 'msgid')
local ts = stamp()
redis.call('XADD', p .. 'messages', 'MAXLEN', ARGV[8], id .. '-1', 'n', ARGV[6], 'c', ARGV[7],
           't', ts)
append(ARGV[3], 'm', ARGV[6], ARGV[7], ARGV[4], ARGV[5], id, ts)
return 'ok'
)lua";

/// ARGV: prefix, epoch, events cap, node, connection, name. 'epoch', 'gone'
/// (nothing to do) or 'ok'.
inline constexpr const char* leave = R"lua(
if redis.call('GET', p .. 'epoch') ~= ARGV[2] then return 'epoch' end
if not owned(ARGV[6], ARGV[4], ARGV[5]) then return 'gone' end
remove(ARGV[3], ARGV[6], ARGV[4], ARGV[5])
return 'ok'
)lua";

/// ARGV: prefix, events cap, node, lease ms. Renews the node's lease, then
/// announces the leaves of every node whose lease lapsed. The number of users
/// removed.
inline constexpr const char* lease = R"lua(
local lease = p .. 'lease:' .. ARGV[3]
if not redis.call('SET', lease, '1', 'PX', ARGV[4], 'XX') then
  redis.call('SET', lease, '1', 'PX', ARGV[4])
end
local removed = 0
for _, node in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if redis.call('EXISTS', p .. 'lease:' .. node) == 0 then
    for _, name in ipairs(redis.call('SMEMBERS', p .. 'node:' .. node)) do
      local owner = redis.call('HGET', p .. 'users', name)
      if owner and string.sub(owner, 1, #node + 1) == node .. '\n' then
        local peer = string.match(owner, '^[^\n]*\n([^\n]*)\n')
        remove(ARGV[2], name, node, peer)
        removed = removed + 1
      end
    end
    redis.call('DEL', p .. 'node:' .. node)
    redis.call('SREM', p .. 'nodes', node)
  end
end
return removed
)lua";

/// ARGV: prefix, events cap, node. A node that stops: announces its users'
/// leaves and gives up its lease.
inline constexpr const char* goodbye = R"lua(
for _, name in ipairs(redis.call('SMEMBERS', p .. 'node:' .. ARGV[3])) do
  local owner = redis.call('HGET', p .. 'users', name)
  if owner and string.sub(owner, 1, #ARGV[3] + 1) == ARGV[3] .. '\n' then
    local peer = string.match(owner, '^[^\n]*\n([^\n]*)\n')
    remove(ARGV[2], name, ARGV[3], peer)
  end
end
redis.call('DEL', p .. 'node:' .. ARGV[3], p .. 'lease:' .. ARGV[3])
redis.call('SREM', p .. 'nodes', ARGV[3])
return 'ok'
)lua";

/// ARGV: prefix, a new epoch, messages wanted. Where a node joins the room:
/// {epoch, last event entry, last event number, last message id, stamp,
/// users (name, owner, ...), newest messages (newest first)}. A room without
/// an epoch (a new Redis, or one that lost its data) starts afresh with the
/// epoch given.
inline constexpr const char* sync = R"lua(
local epoch = redis.call('GET', p .. 'epoch')
if not epoch then
  for _, node in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
    redis.call('DEL', p .. 'node:' .. node)
  end
  redis.call('DEL', p .. 'nodes', p .. 'users', p .. 'events', p .. 'messages', p .. 'msgid',
             p .. 'evseq')
  redis.call('SET', p .. 'epoch', ARGV[2])
  epoch = ARGV[2]
end
local last = redis.call('XREVRANGE', p .. 'events', '+', '-', 'COUNT', 1)
local last_entry = '0-0'
if #last > 0 then last_entry = last[1][1] end
return {epoch, last_entry, redis.call('GET', p .. 'evseq') or '0',
        redis.call('GET', p .. 'msgid') or '0', stamp(), redis.call('HGETALL', p .. 'users'),
        redis.call('XREVRANGE', p .. 'messages', '+', '-', 'COUNT', ARGV[3])}
)lua";

/// ARGV: prefix, the last event number the node applied. A stamp when no
/// event came after it (a floor for every event to come), else nil.
inline constexpr const char* probe = R"lua(
if (redis.call('GET', p .. 'evseq') or '0') ~= ARGV[2] then return false end
return stamp()
)lua";

}  // namespace chat::cluster::scripts
