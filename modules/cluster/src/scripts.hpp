#pragma once
// The Lua scripts that make the rooms' changes atomic in Redis (rules 15 and
// 18). Each runs alone in Redis: a join checks and claims the name, and
// appends the event, with nothing in between; a message takes the next id of
// its room and appends itself to the room's kept messages and events, so
// that each room's events' order is its ids' order. A message is one script
// call whatever the number of rooms.
//
// Keys, under a prefix ("chat:"). Each room's own keys share the hash tag
// {r:<room>}; the lobby (room "") keeps the names it had before rooms:
//   <room>events      stream of the room's events, each one field "e" whose
//                     value is these, one per line, in this order (one
//                     string: every node reads every event of its rooms, and
//                     a reply of 2 strings an event costs far less to make
//                     and to parse than one of 20):
//                       kind: j join, l leave, m message
//                       the event's number in its room (<room>evseq): a
//                         reader that sees a number skipped missed an event
//                       its number among all events (gseq)
//                       the node the user is on
//                       that node's incarnation
//                       the user's connection on that node
//                       a message's id (0 for others)
//                       the stamp (ms since the Unix epoch)
//                       the user's name
//                       the join time of a join, the content of a message
//                         (the rest of the value: it may hold line breaks)
//                     The nodes of one cluster run one version: the scripts'
//                     arguments and this layout are theirs.
//   <room>evseq       the room's last event number
//   <room>msgid       the room's last message id
//   <room>messages    stream of its kept messages (trimmed by whole stream
//                     nodes when it keeps 1,000 or more: less than a node
//                     more, stream-node-max-entries, 100 by default),
//                     entry id "<message id>-1":
//                     n, c (content), t
//   <room>users       hash: name -> owner tag
//                     "node\nincarnation\nconnection\njoin time"
//   where <room> is "" for the lobby and "{r:<name>}:" for a room. A room's
//   <room>holders     set of the nodes that hold it (have users in it or
//                     joining it): they read its events
// Shared by every room:
//   epoch             names the history the ids of every room count in (rule 12)
//   gseq              the last event's number among all rooms' events
//   clock             the last stamp handed out: stamps never go back, even if
//                     Redis's clock does
//   nodes             set of nodes with users; node:<id> the names of a node's
//                     users (the lobby's)
//   seats:<id>        a node's users in rooms: "room\nname"
//   held:<id>         the rooms a node holds
//   open              the rooms some node holds
//   quiet             zset of the rooms nobody holds that keep messages, by
//                     when they were let go: the quietest is forgotten first
//                     when one room more than --max-rooms would be made
//   busy              zset: room -> users in it, for `rooms` answers
//   forgotten         hash: a forgotten room -> its last id, so that a room
//                     made again counts on (rule 12); at most 100,000 names,
//                     beyond that folded into
//   floor             the count a room not listed there starts from
//   lease:<id>        a node's liveness: its incarnation, kept alive by it (PX)
//
// An incarnation is a random token each process makes when it starts: a node
// id names one process at a time, and a process started under the id of one
// that died tells that one's users (other incarnation) from its own.
//
// Every script takes the same first arguments (ARGV):
//   1 key prefix   2 the epoch the node is in   3 the last lobby event number
//   and 4 the last lobby message id it has seen   5 events kept per room
//   6 node id   7 incarnation   8 the highest event number among all (gseq)
//   it has seen
// and its own from ARGV[9] on. The seen counters let Redis notice that it
// came back with older state than the nodes saw (restored from a snapshot, a
// replica that lagged): it then takes a new epoch at once, in the same
// script, so that an id never names two messages within one epoch.
// The shared keys and the dead-node sweep span rooms, so the scripts need one
// Redis (not a sharded Redis Cluster); the rooms' tags are where a sharded
// layout would split them.

namespace chat::cluster::scripts {

/// Shared by the scripts below.
inline constexpr const char* prelude = R"lua(
local p, cap, node, inc = ARGV[1], ARGV[5], ARGV[6], ARGV[7]
local function rkey(room, key)
  if room == '' then return p .. key end
  return p .. '{r:' .. room .. '}:' .. key
end
local function number(key)
  return tonumber(redis.call('GET', key) or '0')
end
local function counter(key)
  return number(p .. key)
end
-- The last stamp handed out, once read (by same_room() or stamp()) or written.
local clock, clock_text
local function stamp()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if not clock then
    clock_text = redis.call('GET', p .. 'clock') or '0'
    clock = tonumber(clock_text)
  end
  -- Written only when it moves (a ms holds many calls under load).
  if now > clock then
    clock, clock_text = now, string.format('%.0f', now)
    redis.call('SET', p .. 'clock', clock_text)
  end
  return clock_text
end
local function append(room, kind, name, value, onode, oinc, peer, id, ts)
  local seq = redis.call('INCR', rkey(room, 'evseq'))
  local g = redis.call('INCR', p .. 'gseq')
  redis.call('XADD', rkey(room, 'events'), 'MAXLEN', '~', cap, '*', 'e',
             table.concat({kind, seq, g, onode, oinc, peer, id, ts, name, value}, '\n'))
end
-- Whether this connection of this process owns the name in the room: its
-- tag starts so (compared whole rather than matched: a message asks it).
local function owned(room, name, peer)
  local owner = redis.call('HGET', rkey(room, 'users'), name)
  local tag = node .. '\n' .. inc .. '\n' .. peer .. '\n'
  return owner ~= false and string.sub(owner, 1, #tag) == tag
end
-- Whether Redis holds the history this node is in, as far as it has seen it.
-- Counters below what the node saw mean Redis lost state: a new epoch, now.
local function same_room()
  local now = redis.call('MGET', p .. 'epoch', p .. 'evseq', p .. 'msgid', p .. 'gseq',
    p .. 'clock')
  local epoch = now[1]
  clock_text = now[5] or '0'  -- read here, the message's stamp() needs no call of its own
  clock = tonumber(clock_text)
  if not epoch or epoch ~= ARGV[2] then return false end
  if tonumber(now[2] or '0') < tonumber(ARGV[3]) or tonumber(now[3] or '0') < tonumber(ARGV[4]) or
     tonumber(now[4] or '0') < tonumber(ARGV[8]) then
    local t = redis.call('TIME')
    redis.call('SET', p .. 'epoch', string.sub(redis.sha1hex(epoch .. t[1] .. t[2]), 1, 16))
    return false
  end
  return true
end
local function leased()
  return redis.call('GET', p .. 'lease:' .. node) == inc
end
)lua";

/// After the prelude, for the scripts that seat users and hold or let go
/// of rooms (all but the message and the probe, which a message or an idle
/// reader runs: each function here is made anew on every call).
inline constexpr const char* rooms_prelude = R"lua(
local forgotten_kept = 100000
-- Up to `count` messages a room keeps, newest first, from entry `upto` ('+':
-- the newest) down: none older than its newest `keep`, although its stream
-- may hold some (trimmed by whole nodes).
local function newest(room, count, keep, upto)
  local last = number(rkey(room, 'msgid'))
  local oldest = '-'
  if last > tonumber(keep) then
    oldest = string.format('%.0f', last - tonumber(keep) + 1) .. '-1'
  end
  return redis.call('XREVRANGE', rkey(room, 'messages'), upto, oldest, 'COUNT', count)
end
local function owner_of(room, name)
  local owner = redis.call('HGET', rkey(room, 'users'), name)
  if not owner then return nil end
  return string.match(owner, '^([^\n]*)\n([^\n]*)\n([^\n]*)\n')
end
local function claim(room, name, peer, joined)
  redis.call('HSET', rkey(room, 'users'), name,
             node .. '\n' .. inc .. '\n' .. peer .. '\n' .. joined)
end
local function remove(room, name, onode, oinc, peer)
  redis.call('HDEL', rkey(room, 'users'), name)
  if room == '' then
    redis.call('SREM', p .. 'node:' .. onode, name)
  else
    redis.call('SREM', p .. 'seats:' .. onode, room .. '\n' .. name)
    if tonumber(redis.call('ZINCRBY', p .. 'busy', -1, room)) <= 0 then
      redis.call('ZREM', p .. 'busy', room)
    end
  end
  append(room, 'l', name, '', onode, oinc, peer, 0, stamp())
end
local function room_keys(room)
  return rkey(room, 'users'), rkey(room, 'events'), rkey(room, 'messages'), rkey(room, 'msgid'),
         rkey(room, 'evseq'), rkey(room, 'holders')
end
-- A room nobody holds (so without users): its keys go, kept messages
-- included, and its count is remembered (bounded: beyond, one name at random
-- folds into the floor).
local function forget(room)
  local last = number(rkey(room, 'msgid'))
  if last > 0 then
    redis.call('HSET', p .. 'forgotten', room, last)
    if redis.call('HLEN', p .. 'forgotten') > forgotten_kept then
      local other = redis.call('HRANDFIELD', p .. 'forgotten')
      local count = tonumber(redis.call('HGET', p .. 'forgotten', other))
      if count > counter('floor') then redis.call('SET', p .. 'floor', count) end
      redis.call('HDEL', p .. 'forgotten', other)
    end
  end
  redis.call('DEL', room_keys(room))
  redis.call('ZREM', p .. 'quiet', room)
  redis.call('ZREM', p .. 'busy', room)
  redis.call('SREM', p .. 'open', room)
end
-- Made (again): its ids count on from where a forgotten room of its name
-- ended; its events' numbers from the count of all events, above any number
-- an earlier room of its name had (a node cut off while it was forgotten
-- then sees a gap, not Redis going back).
local function create(room)
  local base = redis.call('HGET', p .. 'forgotten', room) or counter('floor')
  redis.call('HDEL', p .. 'forgotten', room)
  redis.call('DEL', room_keys(room))  -- whatever a lost index left behind
  redis.call('SET', rkey(room, 'msgid'), base)
  redis.call('SET', rkey(room, 'evseq'), counter('gseq'))
end
-- Node `onode` no longer holds `room`; nobody holding it, it is quiet (it
-- keeps messages) or gone.
local function unhold(room, onode)
  redis.call('SREM', p .. 'held:' .. onode, room)
  local holders = rkey(room, 'holders')
  redis.call('SREM', holders, onode)
  if redis.call('SCARD', holders) > 0 or redis.call('SISMEMBER', p .. 'open', room) == 0 then
    return
  end
  redis.call('SREM', p .. 'open', room)
  -- Nobody holds it, so nobody is in it: whatever a lost leave left goes.
  redis.call('DEL', rkey(room, 'users'))
  redis.call('ZREM', p .. 'busy', room)
  if redis.call('XLEN', rkey(room, 'messages')) > 0 then
    redis.call('ZADD', p .. 'quiet', stamp(), room)
  else
    forget(room)
  end
end
-- Announces the leaves of every user of node `onode`, in every room, and
-- lets go of its rooms; the number of users removed.
local function release(onode)
  local removed = 0
  for _, seat in ipairs(redis.call('SMEMBERS', p .. 'seats:' .. onode)) do
    local room, name = string.match(seat, '^([^\n]*)\n(.*)$')
    local n, i, peer = owner_of(room, name)
    if n == onode then remove(room, name, onode, i, peer) end
  end
  redis.call('DEL', p .. 'seats:' .. onode)
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'held:' .. onode)) do
    unhold(room, onode)
  end
  for _, name in ipairs(redis.call('SMEMBERS', p .. 'node:' .. onode)) do
    local n, i, peer = owner_of('', name)
    local owner = redis.call('HGET', p .. 'users', name) or ''
    -- A tag of an older version ("node\nconnection\njoin time") is the node's too.
    if n == onode or (not n and string.sub(owner, 1, #onode + 1) == onode .. '\n') then
      remove('', name, onode, i or '', peer or '')
      removed = removed + 1
    end
  end
  redis.call('DEL', p .. 'node:' .. onode)
  redis.call('SREM', p .. 'nodes', onode)
  return removed
end
)lua";

/// ARGV[9..]: connection, name, join time, room. 'epoch' (the room is not
/// the node's), 'lease' (the node's lease is not this process's), 'taken'
/// (a login's name), 'gone' (a room's joiner is no longer logged in on this
/// connection), 'closed' (the node does not hold the room), or 'ok' (the
/// join is appended).
inline constexpr const char* join = R"lua(
if not same_room() then return 'epoch' end
if not leased() then return 'lease' end
local peer, name, joined, room = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
if room == '' then
  if redis.call('HEXISTS', p .. 'users', name) == 1 then return 'taken' end
  redis.call('SADD', p .. 'node:' .. node, name)
  redis.call('SADD', p .. 'nodes', node)
else
  if not owned('', name, peer) then return 'gone' end
  if redis.call('SISMEMBER', rkey(room, 'holders'), node) == 0 then return 'closed' end
  if redis.call('HEXISTS', rkey(room, 'users'), name) == 0 then
    redis.call('ZINCRBY', p .. 'busy', 1, room)
  end
  redis.call('SADD', p .. 'seats:' .. node, room .. '\n' .. name)
end
claim(room, name, peer, joined)
append(room, 'j', name, joined, node, inc, peer, 0, stamp())
return 'ok'
)lua";

/// ARGV[9..]: connection, name, content, messages kept, room. 'epoch',
/// 'gone' (the user is no longer this connection's in the room), or 'ok'.
inline constexpr const char* message = R"lua(
if not same_room() then return 'epoch' end
local room = ARGV[13]
if not owned(room, ARGV[10], ARGV[9]) then return 'gone' end
local id = redis.call('INCR', rkey(room, 'msgid'))
local ts = stamp()
-- A room keeping many is trimmed as the events are, by whole nodes of the
-- stream (an exact MAXLEN cost more than the rest of the call): it may hold
-- less than a node (stream-node-max-entries, 100 by default) more than it
-- keeps, under a tenth more with the default. Every read ends at the newest
-- it keeps all the same (newest(): the open, sync and page scripts). One
-- keeping few is trimmed exactly, so that its memory stays what
-- --history-keep says.
local trim = '='
if tonumber(ARGV[12]) >= 1000 then trim = '~' end
redis.call('XADD', rkey(room, 'messages'), 'MAXLEN', trim, ARGV[12], id .. '-1', 'n', ARGV[10],
           'c', ARGV[11], 't', ts)
append(room, 'm', ARGV[10], ARGV[11], node, inc, ARGV[9], id, ts)
return 'ok'
)lua";

/// ARGV[9..]: connection, name, room. 'epoch', 'gone' (nothing to do) or 'ok'.
inline constexpr const char* leave = R"lua(
if not same_room() then return 'epoch' end
if not owned(ARGV[11], ARGV[10], ARGV[9]) then return 'gone' end
remove(ARGV[11], ARGV[10], node, inc, ARGV[9])
return 'ok'
)lua";

/// ARGV[9..]: room, messages wanted, --max-rooms, messages kept. The node holds the room
/// from now on (someone on it joins): 'epoch', 'lease', 'too_many' (making
/// it would exceed --max-rooms and every room is held), or {last event
/// entry, last event number, last message id, stamp, users (name, owner
/// tag, ...), newest messages (newest first), gseq}. A room that does not
/// exist is made, after forgetting the quietest when there are as many as
/// allowed.
inline constexpr const char* open = R"lua(
if not same_room() then return 'epoch' end
if not leased() then return 'lease' end
local room = ARGV[9]
if redis.call('SISMEMBER', p .. 'open', room) == 0 then
  if redis.call('ZSCORE', p .. 'quiet', room) then
    redis.call('ZREM', p .. 'quiet', room)
  else
    if redis.call('SCARD', p .. 'open') + redis.call('ZCARD', p .. 'quiet') >=
       tonumber(ARGV[11]) then
      local quietest = redis.call('ZRANGE', p .. 'quiet', 0, 0)
      if #quietest == 0 then return 'too_many' end
      forget(quietest[1])
    end
    create(room)
  end
  redis.call('SADD', p .. 'open', room)
end
redis.call('SADD', rkey(room, 'holders'), node)
redis.call('SADD', p .. 'held:' .. node, room)
local last = redis.call('XREVRANGE', rkey(room, 'events'), '+', '-', 'COUNT', 1)
local last_entry = '0-0'
if #last > 0 then last_entry = last[1][1] end
return {last_entry, redis.call('GET', rkey(room, 'evseq')) or '0',
        redis.call('GET', rkey(room, 'msgid')) or '0', stamp(),
        redis.call('HGETALL', rkey(room, 'users')),
        newest(room, ARGV[10], ARGV[12], '+'),
        redis.call('GET', p .. 'gseq') or '0'}
)lua";

/// ARGV[9]: room. The node no longer holds it (its last user there left).
inline constexpr const char* vacate = R"lua(
unhold(ARGV[9], node)
return 'ok'
)lua";

/// No more ARGV: up to 1,000 rooms with users, the busiest first, with their
/// counts (name, count, ...).
inline constexpr const char* busiest = R"lua(
return redis.call('ZREVRANGE', p .. 'busy', 0, 999, 'WITHSCORES')
)lua";

/// ARGV[9..]: lease ms, sweep (1: the node has been connected long enough to
/// judge the others). Renews the node's lease with its incarnation; when
/// sweeping, announces the leaves of every node whose lease lapsed.
/// {users removed, the incarnation the lease held before ("" if none)}.
inline constexpr const char* lease = R"lua(
local key = p .. 'lease:' .. node
local before = redis.call('GET', key) or ''
redis.call('SET', key, inc, 'PX', ARGV[9])
local removed = 0
if ARGV[10] == '1' then
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
if leased() then
  redis.call('DEL', p .. 'lease:' .. node)
end
return 'ok'
)lua";

/// ARGV[9..]: a new epoch, messages wanted, '1' when the node saw Redis go
/// back (the room then takes the new epoch, unless its epoch is no longer
/// the node's: another node changed it already), messages kept. Where a node joins the
/// lobby, its clients starting afresh (its first join, or it cannot catch
/// up): first the leaves of any user still listed under its id, in every
/// room (an earlier process's, or its own from before), and its rooms let
/// go; then {epoch, last event entry, last event number, last message id,
/// stamp, users (name, owner tag, ...), newest messages (newest first),
/// gseq}. A Redis without an epoch (a new one, or one that lost its data)
/// starts afresh with the epoch given.
inline constexpr const char* sync = R"lua(
local epoch = redis.call('GET', p .. 'epoch')
if not epoch then
  for _, other in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
    redis.call('DEL', p .. 'node:' .. other, p .. 'seats:' .. other, p .. 'held:' .. other)
  end
  redis.call('DEL', p .. 'nodes', p .. 'users', p .. 'events', p .. 'messages', p .. 'msgid',
             p .. 'evseq', p .. 'open', p .. 'quiet', p .. 'busy')
  redis.call('SET', p .. 'epoch', ARGV[9])
elseif ARGV[11] == '1' and epoch == ARGV[2] then
  redis.call('SET', p .. 'epoch', ARGV[9])
else
  same_room()
end
release(node)
local last = redis.call('XREVRANGE', p .. 'events', '+', '-', 'COUNT', 1)
local last_entry = '0-0'
if #last > 0 then last_entry = last[1][1] end
return {redis.call('GET', p .. 'epoch'), last_entry, redis.call('GET', p .. 'evseq') or '0',
        redis.call('GET', p .. 'msgid') or '0', stamp(), redis.call('HGETALL', p .. 'users'),
        newest('', ARGV[10], ARGV[12], '+'),
        redis.call('GET', p .. 'gseq') or '0'}
)lua";

/// ARGV[9..]: pairs of a room the node reads and the last event number it
/// applied there. 'epoch' when the room is no longer the node's (another
/// epoch, a Redis that lost state or was flushed); else a stamp when no
/// event came in those rooms after the last the node applied (a floor for
/// every event to come), or nil.
inline constexpr const char* probe = R"lua(
if not same_room() then return 'epoch' end
for i = 9, #ARGV, 2 do
  if number(rkey(ARGV[i], 'evseq')) ~= tonumber(ARGV[i + 1]) then return false end
end
return stamp()
)lua";

/// ARGV[9..]: room, the page's newest entry ('+', or "<id>-1"), messages
/// wanted, messages kept. A page of the room's kept messages, newest first.
inline constexpr const char* page = R"lua(
return newest(ARGV[9], ARGV[11], ARGV[12], ARGV[10])
)lua";

}  // namespace chat::cluster::scripts
