#pragma once
// What sessions tell the hub: the Go hub's register, unregister and broadcast
// channels as one typed stream.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "chat/proto/close_code.hpp"

namespace chat::hub {

class Peer;
using PeerId = std::uint64_t;

/// A connection opened: the hub starts tracking it (not yet logged in).
struct Register {
    std::shared_ptr<Peer> peer;
};

/// A connection ended: the hub forgets it and, if it was logged in, tells the
/// others. With a close code (a logout, a client's error) the hub closes the
/// connection's queue with it: after every frame the hub queued before,
/// including the broadcasts of the client's own earlier messages.
struct Unregister {
    PeerId peer = 0;
    std::optional<proto::CloseCode> close = std::nullopt;
};

/// A client's login, message or history request, already checked for form by
/// its session. The hub decides what only it can know (name taken, logged in
/// or not) and announces or answers it.
struct Broadcast {
    enum class Kind { login, message, history };
    PeerId from = 0;
    Kind kind = Kind::message;
    std::string text;  // the trimmed name of a login, the content of a message
    // A login: the last id the client saw and its epoch (a resume, rule 13).
    // A history request: the id to read below (rule 14).
    std::uint64_t id = 0;
    std::string epoch;
};

/// Something that happened in the room, in its one order (rule 8): what the
/// hub applies. A single node makes these itself; in a cluster (rule 15) they
/// come back from the sequencer that every node reads, own clients' included.
struct Event {
    enum class Kind { join, leave, message };
    Kind kind = Kind::message;
    std::string name;
    std::string text;        // the join time of a join, the content of a message
    std::uint64_t id = 0;    // a message's id
    std::int64_t stamp = 0;  // when it was sequenced (ms since the Unix epoch); 0: now
    PeerId local = 0;        // the connection it came from, when it is on this node
};

/// What a cluster node knows of the room when it (re)connects to the
/// sequencer: the point its events go on from.
struct RoomState {
    struct User {
        std::string name;
        std::string joined;
        PeerId local = 0;  // its connection, when it is on this node
    };
    std::string epoch;
    std::uint64_t last_id = 0;
    std::int64_t stamp = 0;
    std::vector<User> users;
    std::vector<std::shared_ptr<const std::string>> newest;  // messages, oldest first
};

/// From a cluster (rule 15), in the room's order. `now`: the sequencer's time
/// after the last of these events, a floor for every event still to come.
struct Sequenced {
    std::vector<Event> events;
    std::int64_t now = 0;
};

/// From a cluster: a client's login or message was not taken (the name is
/// taken elsewhere, the sequencer cannot be reached). `login` says which.
struct Refused {
    PeerId peer = 0;
    bool login = false;
    std::string reason;
};

/// From a cluster: whether the sequencer can be reached. With a state, the
/// node (re)joined the room at that point; `reset` says it could not catch
/// up (another epoch, events no longer kept) and its clients must log in again.
struct Reachability {
    bool up = false;
    std::optional<RoomState> state = std::nullopt;
    bool reset = false;
};

using Command = std::variant<Register, Unregister, Broadcast, Sequenced, Refused, Reachability>;

}  // namespace chat::hub
