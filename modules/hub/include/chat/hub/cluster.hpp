#pragma once
// The room shared by several nodes (contract rule 15), as the hub sees it: an
// interface the hub declares and modules/cluster implements on Redis, so that
// the hub knows nothing of Redis.

#include <string>

#include "chat/hub/commands.hpp"
#include "chat/net/asio.hpp"

namespace chat::hub {

class Hub;

/// A sequencer that every node of the room shares. The hub asks it to sequence
/// joins, messages and leaves; it never applies them itself. What was
/// sequenced comes back to every node, this one included, as Sequenced
/// commands in the room's one order; a refusal as a Refused command; a lost or
/// regained sequencer as a Reachability command. Calls come from the hub's
/// strand, must not block, and are sent in the order they are made.
class Cluster {
  public:
    Cluster() = default;
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;
    virtual ~Cluster() = default;

    /// Once, as the hub starts: where the commands go from now on.
    virtual void attach(Hub& hub) = 0;
    /// `name` asks to join from connection `peer`, at `joined` (RFC 3339).
    virtual void claim(PeerId peer, const std::string& name, const std::string& joined) = 0;
    /// The user `name` of connection `peer` says `content`.
    virtual void publish(PeerId peer, const std::string& name, std::string content) = 0;
    /// The user `name` of connection `peer` (logged in, or whose claim may
    /// have been taken) left. Never lost: kept until the sequencer has it.
    virtual void leave(PeerId peer, const std::string& name) = 0;
    /// After the hub's last command: announces what is still owed (leaves),
    /// within a bounded time, and sends no more commands.
    virtual awaitable<void> detach() = 0;
};

}  // namespace chat::hub
