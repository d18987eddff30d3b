#pragma once
// What the hub is told, as one typed stream: the Go hub's register,
// unregister and broadcast channels, with a broadcast named for what the
// client asks (Login, Say, HistoryRequest).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

/// A client asks to log in as `name` (already trimmed and checked for form
/// by its session). With the last id it saw and that id's epoch, it comes
/// back after a drop (rule 13). The hub decides what only it can know (name
/// taken, logged in already).
struct Login {
    PeerId from = 0;
    std::string name;
    std::uint64_t last_seen = 0;
    std::string epoch;
};

/// A logged-in client says `content` to `room` ("" is the lobby).
struct Say {
    PeerId from = 0;
    std::string content;
    std::string room;
};

/// A client asks for the messages of `room` older than `before` (rule 14).
struct HistoryRequest {
    PeerId from = 0;
    std::uint64_t before = 0;
    std::string room;
};

/// A logged-in client asks to enter `room` (not the lobby; trimmed and
/// checked for form by its session), resuming after `last_seen` when it
/// gives the epoch that id counts in (rule 17, as rule 13).
struct Join {
    PeerId from = 0;
    std::string room;
    std::uint64_t last_seen = 0;
    std::string epoch;
};

/// A client asks to leave `room` (not the lobby).
struct Leave {
    PeerId from = 0;
    std::string room;
};

/// A client asks which rooms have users (rule 17's `rooms`).
struct RoomsRequest {
    PeerId from = 0;
};

/// Something that happened in a room, in its one order (rule 8): what the
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
    std::string room;        // "" is the lobby, where a join is a login
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

/// From a cluster: a client's login, join or message was not taken (the
/// name is taken elsewhere, the sequencer cannot be reached).
struct Refused {
    enum class Request { login, join, message };
    PeerId peer = 0;
    Request request = Request::message;
    std::string reason;
    std::string room;  // of a join or a message
};

/// From the history: the answer to a client's HistoryRequest, or nullopt
/// when the store could not answer it.
struct HistoryPage {
    PeerId peer = 0;
    std::string room;
    std::uint32_t request = 0;  // which of the member's requests in that room
    std::optional<std::vector<std::shared_ptr<const std::string>>> messages;
};

/// Where a room that is not in the hub's memory stands, read from the
/// history when someone joins it.
struct RoomStart {
    enum class Outcome {
        opened,    // it existed, or was created now
        too_many,  // --max-rooms rooms exist and each has users
        failed,    // the store could not answer (busy, or a read failed)
    };
    Outcome outcome = Outcome::failed;
    std::uint64_t last_id = 0;                               // its count goes on after it
    std::vector<std::shared_ptr<const std::string>> newest;  // its newest messages, oldest first
    // A cluster's room (rule 18) has users on other nodes already, and the
    // sequencer's time when it was read.
    std::vector<RoomState::User> users;
    std::int64_t stamp = 0;
};

/// From the history: the answer to the hub's History::open_room.
struct RoomOpened {
    std::string room;
    RoomStart start;
};

/// From a cluster: the answer to a client's RoomsRequest (rule 18: the rooms
/// of every node), the busiest first; nullopt when Redis could not answer.
struct RoomsCounted {
    PeerId peer = 0;
    std::optional<std::vector<std::pair<std::string, std::uint64_t>>> rooms;
};

/// From the hub's presence timer: the joins and leaves gathered in a big
/// room go out now (rule 16).
struct PresenceDue {};

/// From Hub::stop(): close every connection with 1001 (rule 11).
struct Stop {};

/// From a cluster: whether the sequencer can be reached. With a state, the
/// node (re)joined the room at that point; `reset` says it could not catch
/// up (another epoch, events no longer kept) and its clients must log in again.
struct Reachability {
    bool up = false;
    std::optional<RoomState> state = std::nullopt;
    bool reset = false;
};

/// Everything that changes the hub, in the one order it handles them: the
/// Go hub's register, unregister and broadcast channels (the first eight),
/// what the sequencer and the history send back, and the hub's own timer
/// and stop.
using Command = std::variant<Register, Unregister, Login, Say, HistoryRequest, Join, Leave,
                             RoomsRequest, Sequenced, Refused, Reachability, HistoryPage,
                             RoomOpened, RoomsCounted, PresenceDue, Stop>;

}  // namespace chat::hub
