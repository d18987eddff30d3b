#pragma once
// What the hub sees of a connection.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_queue.hpp"

namespace chat::hub {

class WriteScheduler;

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

    /// The writer is done with its turn, if it holds one (WriteScheduler):
    /// its write has left, its socket is full, or it has ended. Thread-safe;
    /// one atomic exchange when it holds none.
    void end_turn() noexcept;

    /// Hub strand only: `frames` more were queued for it in the hub's round
    /// `round` (Hub::run); how many it got in that round.
    std::uint32_t queued_in_round(std::uint32_t round, std::size_t frames) noexcept {
        if (round_ != round) {
            round_ = round;
            in_round_ = 0;
        }
        in_round_ += static_cast<std::uint32_t>(frames);
        return in_round_;
    }

  protected:
    /// Its queue holds `queue_depth` frames and `queue_bytes` bytes at most
    /// (rule 9); its turns come from `scheduler` (the hub's writers(); none:
    /// it is rung without turns).
    Peer(PeerId id, const FrameQueue::WriterExecutor& writer,
         std::shared_ptr<WriteScheduler> scheduler, std::size_t queue_depth,
         std::size_t queue_bytes = FrameQueue::default_max_bytes)
        : id_(id), frames_(writer, queue_depth, queue_bytes), scheduler_(std::move(scheduler)) {}

  private:
    friend class WriteScheduler;

    PeerId id_;
    FrameQueue frames_;
    const std::shared_ptr<WriteScheduler> scheduler_;
    std::atomic<std::uint64_t> turn_{0};  // the turn its writer holds; 0: none
    std::uint32_t round_ = 0;             // the hub's, when it was last queued for
    std::uint32_t in_round_ = 0;          // frames queued for it in that round
};

}  // namespace chat::hub
