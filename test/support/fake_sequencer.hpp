#pragma once
// The shared sequencer of a cluster, played by the test.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chat/hub/sequencer.hpp"

namespace chat::test {

/// A shared sequencer the test plays: it records what the hub asks of it;
/// the test answers with the commands a real one would send.
struct FakeSequencer final : hub::Sequencer {
    bool local() const noexcept override { return false; }
    void attach(hub::Hub& /*hub*/) override { attached = true; }
    Placed join(hub::PeerId peer, const std::string& room, const std::string& name,
                const std::string& joined) override {
        claims.push_back({peer, name, joined, room});
        return std::nullopt;
    }
    Placed say(hub::PeerId peer, const std::string& room, const std::string& name,
               std::string content) override {
        published.push_back({peer, name, std::move(content), room});
        return std::nullopt;
    }
    Placed leave(hub::PeerId peer, const std::string& room, const std::string& name) override {
        leaves.push_back({peer, name, {}, room});
        return std::nullopt;
    }
    bool count_rooms(hub::PeerId peer) override {
        counts.push_back(peer);
        return true;
    }
    awaitable<void> detach() override { co_return; }

    struct Call {
        hub::PeerId peer;
        std::string name;
        std::string text;
        std::string room;
    };
    bool attached = false;
    std::vector<Call> claims;
    std::vector<Call> published;
    std::vector<Call> leaves;
    std::vector<hub::PeerId> counts;
};

}  // namespace chat::test
