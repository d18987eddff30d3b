#pragma once
// What the hub sees of a connection.

#include <cstddef>

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_queue.hpp"

namespace chat::hub {

/// A connection as the hub knows it: an id, a bounded queue for its frames and
/// a way to end it. Sessions implement it; hub tests use plain queues.
class Peer {
  public:
    virtual ~Peer() = default;
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    PeerId id() const noexcept { return id_; }
    FrameQueue& frames() noexcept { return frames_; }
    const FrameQueue& frames() const noexcept { return frames_; }

    /// Ends the connection: frames queued before go out first, then a close frame
    /// with `code`. Thread-safe and idempotent (the first code wins). Must not
    /// block: the hub calls it.
    virtual void close(proto::CloseCode code) = 0;

  protected:
    /// Its queue holds `queue_depth` frames and `queue_bytes` bytes at most (rule 9).
    Peer(PeerId id, const asio::any_io_executor& writer, std::size_t queue_depth,
         std::size_t queue_bytes = FrameQueue::default_max_bytes)
        : id_(id), frames_(writer, queue_depth, queue_bytes) {}

  private:
    PeerId id_;
    FrameQueue frames_;
};

}  // namespace chat::hub
