#pragma once
// Writers owed a wake-up take turns, so that readers and the hub are never
// queued behind a thousand of them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chat::hub {

class Peer;

/// Asio runs handlers first in, first out. Woken all at once after a broadcast,
/// a thousand writers would put a thousand handlers ahead of every reader and
/// of the hub, so the next message would reach the hub only after all of them
/// had written, one frame each: input and output in lock step, one system call
/// per delivery. Here at most `awake_limit` writers are awake; the others wait
/// their turn in line, and meanwhile the hub keeps queueing frames for them, so
/// each leaves with everything queued since its last turn, in one system call.
/// An idle server wakes a writer at once; a busy one batches as much as its
/// own speed requires, with no timer.
///
/// A turn that is never given back (a writer stuck by a bug) would hold its
/// place for good; revoke_overdue() takes such places back.
class WakeQueue : public std::enable_shared_from_this<WakeQueue> {
  public:
    using Clock = std::chrono::steady_clock;

    /// One of the awake places. The writer holds it from its wake-up until its
    /// write has left, or until it ends the turn early (its socket is full);
    /// giving it back (or destroying it) wakes the next in line. A revoked
    /// turn gives nothing back: its place was passed on when it was revoked.
    class Turn {
      public:
        Turn() = default;
        Turn(Turn&& other) noexcept
            : queue_(std::move(other.queue_)), id_(std::exchange(other.id_, 0)) {}
        Turn& operator=(Turn&& other) noexcept {
            if (this != &other) {
                reset();
                queue_ = std::move(other.queue_);
                id_ = std::exchange(other.id_, 0);
            }
            return *this;
        }
        Turn(const Turn&) = delete;
        Turn& operator=(const Turn&) = delete;
        ~Turn() { reset(); }

        /// Gives the place back.
        void reset() {
            if (auto queue = std::move(queue_)) {
                queue->give_back(std::exchange(id_, 0));
            }
        }
        explicit operator bool() const noexcept { return queue_ != nullptr; }

      private:
        friend class WakeQueue;
        Turn(std::shared_ptr<WakeQueue> queue, std::uint64_t id)
            : queue_(std::move(queue)), id_(id) {}
        /// Forgets the place without giving it back (it was never taken).
        void disarm() noexcept {
            queue_.reset();
            id_ = 0;
        }
        std::shared_ptr<WakeQueue> queue_;
        std::uint64_t id_ = 0;
    };

    /// `on_idle` is called (from any thread, without a lock held) each time the
    /// last turn given out has ended.
    explicit WakeQueue(std::size_t awake_limit, std::function<void()> on_idle = {})
        : awake_limit_(awake_limit == 0 ? 1 : awake_limit), on_idle_(std::move(on_idle)) {}

    /// Wakes `peer`'s writer now if a place is free, else when its turn comes.
    /// Thread-safe. A writer no longer waiting when its turn comes is skipped.
    void request(const std::shared_ptr<Peer>& peer);

    /// Takes back every turn held for longer than `limit` and passes its place
    /// on; returns the writers that held them (still alive), so that the
    /// caller can end those connections.
    std::vector<std::shared_ptr<Peer>> revoke_overdue(Clock::duration limit);

    /// Some turn has not ended yet.
    bool busy() const;
    /// Writers awake now (for tests and metrics).
    std::size_t awake() const;
    /// Writers in line.
    std::size_t waiting() const;

  private:
    struct Holder {
        std::weak_ptr<Peer> peer;
        Clock::time_point since;
    };

    /// Turn `id` ended; its place goes to the next in line (unless revoked).
    void give_back(std::uint64_t id);
    /// A place is free: the first in line whose writer waits gets it.
    void hand_out();
    /// The place is free and nobody waits for it.
    void release_place(std::unique_lock<std::mutex>& lock);

    mutable std::mutex mutex_;
    std::deque<std::weak_ptr<Peer>> line_;            // weak: a connection that ended is skipped
    std::unordered_map<std::uint64_t, Holder> held_;  // turns given out, by id
    std::uint64_t last_turn_ = 0;
    std::size_t awake_ = 0;
    const std::size_t awake_limit_;
    const std::function<void()> on_idle_;
};

}  // namespace chat::hub
