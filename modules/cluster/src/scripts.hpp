#pragma once
// The Lua scripts that make the room's changes atomic in Redis (rule 15). Each
// runs alone in Redis: a join checks and claims the name, and appends the
// event, with nothing in between; a message takes the next id and appends
// itself to the kept messages and to the events, so that the events' order
// is the ids' order.
//
// Keys, under a prefix ("chat:"):
//   epoch         names the history the ids count in (rule 12)
//   msgid         the last message id
//   evseq         the last event's number: a reader that sees a number skipped
//                 missed an event (trimmed while it was away)
//   clock         the last stamp handed out: stamps never go back, even if
//                 Redis's clock does
//   events        stream of every event, its fields:
//                   k  kind: j join, l leave, m message
//                   s  the event's number (evseq)
//                   n  the user's name
//                   v  the join time of a join, the content of a message
//                   o  the node the user is on
//                   r  that node's incarnation
//                   p  the user's connection on that node
//                   i  a message's id
//                   t  the stamp (ms since the Unix epoch)
//   messages      stream of messages, entry id "<message id>-1": n, c (content), t
//   users         hash: name -> owner tag "node\nincarnation\nconnection\njoin time"
//   nodes         set of nodes with users; node:<id> the names of a node's users
//   lease:<id>    a node's liveness: its incarnation, kept alive by it (PX)
//
// An incarnation is a random token each process makes when it starts: a node
// id names one process at a time, and a process started under the id of one
// that died tells that one's users (other incarnation) from its own.
//
// Every script takes the same first arguments (ARGV):
//   1 key prefix   2 the epoch the node is in   3 the last event number and
//   4 the last message id it has seen   5 events kept   6 node id
//   7 incarnation
// and its own from ARGV[8] on. The seen counters let Redis notice that it
// came back with older state than the nodes saw (restored from a snapshot, a
// replica that lagged): it then takes a new epoch at once, in the same
// script, so that an id never names two messages within one epoch.
// The keys are built inside the scripts, so the room needs one Redis (not a
// sharded Redis Cluster).

namespace chat::cluster::scripts {

/// Shared by the scripts below.
inline constexpr const char* prelude = R"lua(
local p, cap, node, inc = ARGV[1], ARGV[5], ARGV[6], ARGV[7]
local function counter(key)
  return tonumber(redis.call('GET', p .. key) or '0')
end
local function stamp()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = counter('clock')
  if now < last then now = last end
  local text = string.format('%.0f', now)
  redis.call('SET', p .. 'clock', text)
  return text
end
local function append(kind, name, value, onode, oinc, peer, id, ts)
  local seq = redis.call('INCR', p .. 'evseq')
  redis.call('XADD', p .. 'events', 'MAXLEN', '~', cap, '*', 'k', kind, 's', seq, 'n', name,
             'v', value, 'o', onode, 'r', oinc, 'p', peer, 'i', id, 't', ts)
end
local function owner_of(name)
  local owner = redis.call('HGET', p .. 'users', name)
  if not owner then return nil end
  return string.match(owner, '^([^\n]*)\n([^\n]*)\n([^\n]*)\n')
end
local function owned(name, peer)
  local onode, oinc, opeer = owner_of(name)
  return onode == node and oinc == inc and opeer == peer
end
local function remove(name, onode, oinc, peer)
  redis.call('HDEL', p .. 'users', name)
  redis.call('SREM', p .. 'node:' .. onode, name)
  append('l', name, '', onode, oinc, peer, 0, stamp())
end
-- Announces the leaves of every user of node `onode`; the number removed.
local function release(onode)
  local removed = 0
  for _, name in ipairs(redis.call('SMEMBERS', p .. 'node:' .. onode)) do
    local n, i, peer = owner_of(name)
    local owner = redis.call('HGET', p .. 'users', name) or ''
    -- A tag of an older version ("node\nconnection\njoin time") is the node's too.
    if n == onode or (not n and string.sub(owner, 1, #onode + 1) == onode .. '\n') then
      remove(name, onode, i or '', peer or '')
      removed = removed + 1
    end
  end
  redis.call('DEL', p .. 'node:' .. onode)
  redis.call('SREM', p .. 'nodes', onode)
  return removed
end
-- Whether Redis holds the history this node is in, as far as it has seen it.
-- Counters below what the node saw mean Redis lost state: a new epoch, now.
local function same_room()
  local epoch = redis.call('GET', p .. 'epoch')
  if not epoch or epoch ~= ARGV[2] then return false end
  if counter('evseq') < tonumber(ARGV[3]) or counter('msgid') < tonumber(ARGV[4]) then
    local t = redis.call('TIME')
    redis.call('SET', p .. 'epoch', string.sub(redis.sha1hex(epoch .. t[1] .. t[2]), 1, 16))
    return false
  end
  return true
end
)lua";

/// ARGV[8..]: connection, name, join time. 'epoch' (the room is not the
/// node's), 'lease' (the node's lease is not this process's), 'taken', or
/// 'ok' (the join is appended).
inline constexpr const char* join = R"lua(
if not same_room() then return 'epoch' end
if redis.call('GET', p .. 'lease:' .. node) ~= inc then return 'lease' end
if redis.call('HEXISTS', p .. 'users', ARGV[9]) == 1 then return 'taken' end
redis.call('HSET', p .. 'users', ARGV[9], node .. '\n' .. inc .. '\n' .. ARGV[8] .. '\n' .. ARGV[10])
redis.call('SADD', p .. 'node:' .. node, ARGV[9])
redis.call('SADD', p .. 'nodes', node)
append('j', ARGV[9], ARGV[10], node, inc, ARGV[8], 0, stamp())
return 'ok'
)lua";

/// ARGV[8..]: connection, name, content, messages kept. 'epoch', 'gone' (the
/// user is no longer this connection's), or 'ok'.
inline constexpr const char* message = R"lua(
if not same_room() then return 'epoch' end
if not owned(ARGV[9], ARGV[8]) then return 'gone' end
local id = redis.call('INCR', p .. 'msgid')
local ts = stamp()
redis.call('XADD', p .. 'messages', 'MAXLEN', ARGV[11], id .. '-1', 'n', ARGV[9], 'c', ARGV[10],
           't', ts)
append('m', ARGV[9], ARGV[10], node, inc, ARGV[8], id, ts)
return 'ok'
)lua";

/// ARGV[8..]: connection, name. 'epoch', 'gone' (nothing to do) or 'ok'.
inline constexpr const char* leave = R"lua(
if not same_room() then return 'epoch' end
if not owned(ARGV[9], ARGV[8]) then return 'gone' end
remove(ARGV[9], node, inc, ARGV[8])
return 'ok'
)lua";

/// ARGV[8..]: lease ms, sweep (1: the node has been connected long enough to
/// judge the others). Renews the node's lease with its incarnation; when
/// sweeping, announces the leaves of every node whose lease lapsed.
/// {users removed, the incarnation the lease held before ("" if none)}.
inline constexpr const char* lease = R"lua(
local key = p .. 'lease:' .. node
local before = redis.call('GET', key) or ''
redis.call('SET', key, inc, 'PX', ARGV[8])
local removed = 0
if ARGV[9] == '1' then
  for _, other in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
    if redis.call('EXISTS', p .. 'lease:' .. other) == 0 then
      removed = removed + release(other)
    end
  end
end
return {removed, before}
)lua";

/// No more ARGV. A node that stops: announces its users' leaves and gives up
/// its lease (if it is still its own).
inline constexpr const char* goodbye = R"lua(
release(node)
if redis.call('GET', p .. 'lease:' .. node) == inc then
  redis.call('DEL', p .. 'lease:' .. node)
end
return 'ok'
)lua";

/// ARGV[8..]: a new epoch, messages wanted, '1' when the node saw Redis go
/// back (the room then takes the new epoch, unless its epoch is no longer
/// the node's: another node changed it already). Where a node joins the room, its
/// clients starting afresh (its first join, or it cannot catch up): first
/// the leaves of any user still listed under its id (an earlier process's,
/// or its own from before), then {epoch, last event entry, last event
/// number, last message id, stamp, users (name, owner tag, ...), newest
/// messages (newest first)}. A room without an epoch (a new Redis, or one
/// that lost its data) starts afresh with the epoch given.
inline constexpr const char* sync = R"lua(
local epoch = redis.call('GET', p .. 'epoch')
if not epoch then
  for _, other in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
    redis.call('DEL', p .. 'node:' .. other)
  end
  redis.call('DEL', p .. 'nodes', p .. 'users', p .. 'events', p .. 'messages', p .. 'msgid',
             p .. 'evseq')
  redis.call('SET', p .. 'epoch', ARGV[8])
elseif ARGV[10] == '1' and epoch == ARGV[2] then
  redis.call('SET', p .. 'epoch', ARGV[8])
else
  same_room()
end
release(node)
local last = redis.call('XREVRANGE', p .. 'events', '+', '-', 'COUNT', 1)
local last_entry = '0-0'
if #last > 0 then last_entry = last[1][1] end
return {redis.call('GET', p .. 'epoch'), last_entry, redis.call('GET', p .. 'evseq') or '0',
        redis.call('GET', p .. 'msgid') or '0', stamp(), redis.call('HGETALL', p .. 'users'),
        redis.call('XREVRANGE', p .. 'messages', '+', '-', 'COUNT', ARGV[9])}
)lua";

/// No more ARGV. 'epoch' when the room is no longer the node's (another
/// epoch, a Redis that lost state or was flushed); else a stamp when no event
/// came after the last the node applied (a floor for every event to come),
/// or nil.
inline constexpr const char* probe = R"lua(
if not same_room() then return 'epoch' end
if counter('evseq') ~= tonumber(ARGV[3]) then return false end
return stamp()
)lua";

}  // namespace chat::cluster::scripts
