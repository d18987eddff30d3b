#pragma once
// Where the room's events get their place in the one order (rule 8) and
// messages their ids: an interface the hub declares, so that it knows
// nothing of Redis. The hub always asks, then applies what comes back.

#include <cstdint>
#include <optional>
#include <string>

#include "chat/hub/commands.hpp"
#include "chat/net/asio.hpp"

namespace chat::hub {

class Hub;

/// Places joins, messages and leaves in their room's order ("" is the lobby,
/// where a join is a login). A local sequencer
/// (one server alone) places each at once and returns it; a shared one (a
/// cluster, rule 15) returns nothing and sends it back later, to every node
/// and this one included, as a Sequenced command in the room's one order; a
/// refusal as a Refused command; a lost or regained sequencer as a
/// Reachability command. Calls come from the hub's strand, must not block,
/// and are placed in the order they are made.
class Sequencer {
  public:
    /// The event, when it was placed at once; nullopt when it comes back later.
    using Placed = std::optional<Event>;

    Sequencer() = default;
    Sequencer(const Sequencer&) = delete;
    Sequencer& operator=(const Sequencer&) = delete;
    virtual ~Sequencer() = default;

    /// True when the hub's own room is the authority on who is online (it
    /// may refuse a name itself) and the sequencer is always reachable. A
    /// shared sequencer's room on this node is a replica that may lag.
    virtual bool local() const noexcept = 0;

    /// Once, as the hub starts: where the commands go from now on.
    virtual void attach(Hub& hub) = 0;
    /// `name` asks to join `room` from connection `peer`, at `joined` (RFC 3339).
    virtual Placed join(PeerId peer, const std::string& room, const std::string& name,
                        const std::string& joined) = 0;
    /// The user `name` of connection `peer` says `content` in `room`. A
    /// message placed with id 0 is numbered by the hub, next in its room.
    virtual Placed say(PeerId peer, const std::string& room, const std::string& name,
                       std::string content) = 0;
    /// The user `name` of connection `peer` (in `room`, or whose join may
    /// have been taken) left it. Never lost: kept until the sequencer has it.
    virtual Placed leave(PeerId peer, const std::string& room, const std::string& name) = 0;
    /// A client asks which rooms have users (rule 17). False: the hub knows
    /// every room and answers itself; true: a shared sequencer knows rooms
    /// this node does not hold (rule 18), and answers later as a
    /// RoomsCounted command.
    virtual bool count_rooms(PeerId peer) = 0;
    /// After the hub's last command: announces what is still owed (leaves),
    /// within a bounded time, and sends no more commands.
    virtual awaitable<void> detach() = 0;
};

/// One server alone: every event is placed the moment the hub asks, and the
/// hub numbers the messages in their rooms.
class LocalSequencer final : public Sequencer {
  public:
    bool local() const noexcept override { return true; }
    void attach(Hub& /*hub*/) override {}
    Placed join(PeerId peer, const std::string& room, const std::string& name,
                const std::string& joined) override {
        return Event{Event::Kind::join, name, joined, 0, 0, peer, room};
    }
    Placed say(PeerId peer, const std::string& room, const std::string& name,
               std::string content) override {
        return Event{Event::Kind::message, name, std::move(content), 0, 0, peer, room};
    }
    Placed leave(PeerId peer, const std::string& room, const std::string& name) override {
        return Event{Event::Kind::leave, name, {}, 0, 0, peer, room};
    }
    bool count_rooms(PeerId /*peer*/) override { return false; }
    awaitable<void> detach() override { co_return; }
};

}  // namespace chat::hub
