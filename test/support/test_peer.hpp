#pragma once
// A connection as the hub sees it, without a socket: the test reads its queue.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "chat/chat.pb.h"
#include "chat/hub/peer.hpp"
#include "chat/net/asio.hpp"
#include "run.hpp"

namespace chat::test {

/// A connection as the hub sees it, with a queue the test reads.
class TestPeer final : public hub::Peer {
  public:
    /// Its writer takes turns of `scheduler` (the hub's writers()), if given.
    TestPeer(hub::PeerId id, const asio::any_io_executor& executor, std::size_t depth,
             std::shared_ptr<hub::WriteScheduler> scheduler = nullptr)
        : Peer(id, context_of(executor), std::move(scheduler), depth) {}

    void close(proto::CloseCode code) override;

    /// The next frame the hub queued for this peer.
    awaitable<ChatRequest> next();
    /// The next frame, which must be of `type`.
    awaitable<ChatRequest> expect(std::string_view type);

    /// Frames queued for this peer that the test has not read.
    std::size_t unread() const { return frames().size() - batch_.size() + received_.size(); }

    std::optional<proto::CloseCode> closed_with;

  private:
    std::vector<hub::Frame> batch_;
    std::deque<ChatRequest> received_;
    std::int64_t last_timestamp_ = 0;
};

}  // namespace chat::test
