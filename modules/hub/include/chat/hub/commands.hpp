#pragma once
// What sessions tell the hub: the Go hub's register, unregister and broadcast
// channels as one typed stream.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

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

using Command = std::variant<Register, Unregister, Broadcast>;

}  // namespace chat::hub
