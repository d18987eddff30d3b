#include "event_decoding.hpp"

#include <algorithm>
#include <charconv>

#include "redis_connection.hpp"

namespace chat::cluster {

namespace {

/// The value of `name` in a stream entry's field list.
std::string_view field(std::span<redisReply* const> fields, std::string_view name) {
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (text(*fields[i]) == name) {
            return text(*fields[i + 1]);
        }
    }
    return {};
}

/// Cuts `text` at the first '\n': what comes before it; false when none.
bool take_line(std::string_view& text, std::string_view& line) {
    const auto end = text.find('\n');
    if (end == std::string_view::npos) {
        return false;
    }
    line = text.substr(0, end);
    text.remove_prefix(end + 1);
    return true;
}

}  // namespace

std::uint64_t to_number(std::string_view text) {
    std::uint64_t value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

std::optional<OwnerTag> parse_owner(std::string_view tag) {
    OwnerTag owner;
    if (!take_line(tag, owner.node) || !take_line(tag, owner.incarnation) ||
        !take_line(tag, owner.connection)) {
        return std::nullopt;
    }
    owner.joined = tag;
    return owner;
}

std::optional<StreamEvent> decode_event(const redisReply& entry) {
    // [id, ["e", "kind\nseq\nglobal\nnode\nincarnation\nconnection\nid\nstamp\nname\nvalue"]]
    const auto parts = elements(entry);
    if (parts.size() != 2) {
        return std::nullopt;
    }
    const auto fields = elements(*parts[1]);
    if (fields.size() != 2 || text(*fields[0]) != "e") {
        return std::nullopt;
    }
    auto packed = text(*fields[1]);
    StreamEvent event;
    event.entry = text(*parts[0]);
    std::string_view kind;
    std::string_view seq;
    std::string_view global;
    std::string_view id;
    std::string_view stamp;
    if (!take_line(packed, kind) || !take_line(packed, seq) || !take_line(packed, global) ||
        !take_line(packed, event.owner.node) || !take_line(packed, event.owner.incarnation) ||
        !take_line(packed, event.owner.connection) || !take_line(packed, id) ||
        !take_line(packed, stamp) || !take_line(packed, event.name)) {
        return std::nullopt;
    }
    event.text = packed;  // the rest: a message's content may hold line breaks
    if (kind == "j") {
        event.kind = hub::Event::Kind::join;
    } else if (kind == "l") {
        event.kind = hub::Event::Kind::leave;
    } else if (kind == "m") {
        event.kind = hub::Event::Kind::message;
    } else {
        return std::nullopt;
    }
    event.seq = to_number(seq);
    event.global = to_number(global);
    event.id = to_number(id);
    event.stamp = static_cast<std::int64_t>(to_number(stamp));
    if (event.entry.empty() || event.seq == 0) {
        return std::nullopt;
    }
    return event;
}

std::optional<KeptMessage> decode_message(const redisReply& entry) {
    const auto parts = elements(entry);
    if (parts.size() != 2) {
        return std::nullopt;
    }
    const auto fields = elements(*parts[1]);
    const auto entry_id = text(*parts[0]);
    KeptMessage message;
    message.id = to_number(entry_id.substr(0, entry_id.find('-')));
    if (message.id == 0) {
        return std::nullopt;
    }
    message.name = field(fields, "n");
    message.content = field(fields, "c");
    message.stamp = static_cast<std::int64_t>(to_number(field(fields, "t")));
    return message;
}

std::optional<RoomSnapshot> decode_room_state(const redisReply& reply, bool with_epoch) {
    // {[epoch,] last entry, last event number, last message id, stamp,
    //  users (name, owner tag, ...), newest messages (newest first), gseq}
    auto parts = elements(reply);
    RoomSnapshot room;
    if (with_epoch) {
        if (parts.empty() || text(*parts[0]).empty()) {
            return std::nullopt;
        }
        room.epoch = text(*parts[0]);
        parts = parts.subspan(1);
    }
    if (parts.size() != 7 || text(*parts[0]).empty()) {
        return std::nullopt;
    }
    room.last_entry = text(*parts[0]);
    room.last_seq = to_number(text(*parts[1]));
    room.last_id = to_number(text(*parts[2]));
    room.stamp = static_cast<std::int64_t>(to_number(text(*parts[3])));
    room.global = to_number(text(*parts[6]));
    const auto users = elements(*parts[4]);
    for (std::size_t i = 0; i + 1 < users.size(); i += 2) {
        if (const auto owner = parse_owner(text(*users[i + 1]))) {
            room.users.push_back({text(*users[i]), *owner});
        }
    }
    auto expected = room.last_id;
    for (const auto* entry : elements(*parts[5])) {
        const auto message = decode_message(*entry);
        if (!message || message->id != expected) {
            break;
        }
        room.newest.push_back(*message);
        --expected;
    }
    std::reverse(room.newest.begin(), room.newest.end());
    return room;
}

std::vector<StreamEntries> stream_entries(const redisReply& reply) {
    // [[stream name, [entry, ...]], ...]
    std::vector<StreamEntries> streams;
    for (const auto* stream : elements(reply)) {
        const auto parts = elements(*stream);
        if (parts.size() == 2) {
            streams.push_back({text(*parts[0]), elements(*parts[1])});
        }
    }
    return streams;
}

}  // namespace chat::cluster
