#pragma once
// Pure decoding of what the scripts of scripts.hpp leave in Redis: the fields
// of an event of the stream, and a user's owner tag. No I/O: unit-tested with
// replies parsed from RESP text.

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "chat/hub/commands.hpp"

struct redisReply;

namespace chat::cluster {

/// "node\nincarnation\nconnection\njoin time": who holds a name.
struct OwnerTag {
    std::string_view node;
    std::string_view incarnation;
    std::string_view connection;
    std::string_view joined;
};
std::optional<OwnerTag> parse_owner(std::string_view tag);

/// One entry of the events stream. The views point into the reply.
struct StreamEvent {
    std::string_view entry;    // the stream entry's id, to read on from
    std::uint64_t seq = 0;     // its number in its room: consecutive, or events were missed
    std::uint64_t global = 0;  // its number among every room's events
    hub::Event::Kind kind = hub::Event::Kind::message;
    std::string_view name;
    std::string_view text;
    std::uint64_t id = 0;
    std::int64_t stamp = 0;
    OwnerTag owner;  // its `joined` is empty
};
/// An entry of an XREAD or XRANGE reply: [id, [field, value, ...]]. Nullopt
/// when it is not shaped like one of the scripts' events.
std::optional<StreamEvent> decode_event(const redisReply& entry);

/// One entry of the kept messages stream.
struct KeptMessage {
    std::uint64_t id = 0;
    std::string_view name;
    std::string_view content;
    std::int64_t stamp = 0;
};
/// An entry of the messages stream ("<id>-1", [n, c, t]); nullopt when it is
/// not shaped like one.
std::optional<KeptMessage> decode_message(const redisReply& entry);

/// Where a node joins the lobby (the sync script's answer) or opens a room
/// (the open script's; no epoch): scripts.hpp.
struct RoomSnapshot {
    struct User {
        std::string_view name;
        OwnerTag owner;
    };
    std::string_view epoch;
    std::string_view last_entry;  // of the events stream: read on after it
    std::uint64_t last_seq = 0;
    std::uint64_t last_id = 0;
    std::int64_t stamp = 0;
    std::vector<User> users;
    /// The newest kept messages, oldest first, consecutive up to last_id
    /// (any older than a gap left out: a join is answered with no hole).
    std::vector<KeptMessage> newest;
    std::uint64_t global = 0;  // the last event's number among all (gseq)
};
/// Nullopt when the reply is not shaped like the sync script's (`with_epoch`)
/// or the open script's.
std::optional<RoomSnapshot> decode_room_state(const redisReply& reply, bool with_epoch);

/// One stream of an XREAD reply: its key and its entries.
struct StreamEntries {
    std::string_view stream;
    std::span<redisReply* const> entries;
};
/// The streams of an XREAD reply ({} when it is nil).
std::vector<StreamEntries> stream_entries(const redisReply& reply);

/// A decimal counter as Redis returns it; 0 when it is not one.
std::uint64_t to_number(std::string_view text);

}  // namespace chat::cluster
