#pragma once
// Kept history as the hub sees it (contract rules 12-14): an interface the
// hub declares and modules/history implements, so that the hub knows nothing
// of disks; the newest messages in memory; and history frames built from
// stored bytes.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chat/hub/frame_queue.hpp"

namespace chat::hub {

/// Where broadcast messages are kept. Every call but start() may come from
/// the hub's strand while the store works on a thread of its own.
class History {
  public:
    struct Start {
        std::string epoch;          // names the history the ids count in
        std::uint64_t last_id = 0;  // the count goes on after it
        std::vector<Frame> newest;  // the newest kept messages, oldest first
    };
    /// The messages asked for, or nullopt when the store cannot answer now
    /// (too many reads waiting, or a read that failed).
    using Reply = std::function<void(std::optional<std::vector<Frame>> messages)>;

    History() = default;
    History(const History&) = delete;
    History& operator=(const History&) = delete;
    virtual ~History() = default;

    /// Once, before the hub runs: the epoch, the last kept id and up to
    /// `newest` of the newest messages.
    virtual Start start(std::size_t newest) = 0;

    /// Keeps broadcast message `id`: the very bytes that were sent (a
    /// "message" ChatRequest with its id and timestamp). Ids come in order.
    /// Never waits; false when the queue to the store is full, and the hub
    /// then offers it again later.
    virtual bool try_append(std::uint64_t id, const Frame& message) = 0;

    /// Rule 14: calls `reply`, from any thread, with the newest kept messages
    /// whose ids are below `before`, at most `limit`, oldest first. Replies
    /// come in the order of the requests.
    virtual void read_before(std::uint64_t before, std::size_t limit, Reply reply) = 0;

    /// The hub has ended, or was let go of at the end of the shutdown's grace
    /// period (Hub::abandon); may come more than once. `last_broadcast_id` is
    /// the last message id it broadcast. A message up to it that the history
    /// does not keep (still waiting in the hub, or a write that failed) had
    /// its id handed out: the next start must then take a new epoch (rule 12).
    virtual void stopped(std::uint64_t last_broadcast_id) = 0;
};

/// The newest messages (serialised, as broadcast) with consecutive ids, so
/// that a join or a resume is answered with no I/O. Hub strand only.
class MessageRing {
  public:
    explicit MessageRing(std::size_t capacity) : capacity_(capacity) {}

    /// `message` has id `id`, one above the last pushed (or the first).
    void push(std::uint64_t id, Frame message);
    /// The newest `count` messages at most, oldest first.
    std::vector<Frame> newest(std::size_t count) const;
    /// The messages with ids above `id`, oldest first; the newest `limit` of
    /// them when there are more, or when some are no longer in the ring.
    std::vector<Frame> after(std::uint64_t id, std::size_t limit) const;

    std::size_t size() const noexcept { return messages_.size(); }

  private:
    std::size_t capacity_;
    std::deque<Frame> messages_;
    std::uint64_t first_id_ = 0;  // of messages_.front()
};

/// A short random string naming a new history (rule 12).
std::string new_epoch();

/// A "history" frame holding `messages` (serialised "message" frames, oldest
/// first) stamped `stamp`: the repeated field is written from the stored
/// bytes, with no re-encoding.
Frame history_frame(std::span<const Frame> messages, std::int64_t stamp);

}  // namespace chat::hub
