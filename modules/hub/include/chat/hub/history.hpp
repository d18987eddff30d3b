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

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_queue.hpp"

namespace chat::hub {

/// Where broadcast messages are kept, room by room ("" is the lobby, which
/// always exists). Every call but start() may come from the hub's strand
/// while the store works on a thread of its own; calls are carried out in
/// the order they are made, so that a read sees every message handed over
/// before it.
class History {
  public:
    struct Start {
        std::string epoch;          // names the history the ids of every room count in
        std::uint64_t last_id = 0;  // the lobby's count goes on after it
        std::vector<Frame> newest;  // the lobby's newest kept messages, oldest first
    };
    /// The messages asked for, or nullopt when the store cannot answer now
    /// (too many reads waiting, or a read that failed).
    using Reply = std::function<void(std::optional<std::vector<Frame>> messages)>;
    using RoomReply = std::function<void(RoomStart start)>;

    History() = default;
    History(const History&) = delete;
    History& operator=(const History&) = delete;
    virtual ~History() = default;

    /// Once, before the hub runs: the epoch, and where the lobby stands (up
    /// to `newest` of its newest messages).
    virtual Start start(std::size_t newest) = 0;

    /// Someone joins `room`, which has no users in the hub: calls `reply`,
    /// from any thread, with its last id and up to `newest` of its newest
    /// messages. A room that does not exist is created; when that would make
    /// more than `--max-rooms` rooms, the one without users quiet the
    /// longest is forgotten first, with its messages (too_many when every
    /// room has users). From now on the room has users until vacate(room).
    virtual void open_room(const std::string& room, std::size_t newest, RoomReply reply) = 0;
    /// The last user of `room` (opened) left: it may be forgotten from now
    /// on, and is at once when it keeps no message.
    virtual void vacate(const std::string& room) = 0;

    /// Keeps message `id` of `room`: the very bytes that were sent (a
    /// "message" ChatRequest with its id and timestamp). Ids of a room come
    /// in order. Never waits; false when the queue to the store is full, and
    /// the hub then offers it again later.
    virtual bool try_append(const std::string& room, std::uint64_t id, const Frame& message) = 0;

    /// Rule 14: calls `reply`, from any thread, with the newest kept messages
    /// of `room` whose ids are below `before`, at most `limit`, oldest first.
    virtual void read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                             Reply reply) = 0;

    /// The hub has ended, or was let go of at the end of the shutdown's grace
    /// period (Hub::abandon); may come more than once, the last call being
    /// the one that counts. Unless `all_handed_over`, a message was broadcast
    /// that the hub could not hand over: its id was given out, so the next
    /// start must take a new epoch (rule 12), as after a write that failed.
    virtual void stopped(bool all_handed_over) = 0;
};

/// The newest messages (serialised, as broadcast) with consecutive ids, so
/// that a join or a resume is answered with no I/O. Hub strand only.
class MessageRing {
  public:
    explicit MessageRing(std::size_t capacity) : capacity_(capacity) {}

    /// `message` has id `id`, one above the last pushed (or the first).
    void push(std::uint64_t id, Frame message);
    /// Puts `older` (consecutive, oldest first, the last with id
    /// `last_older_id`) before what it holds: what reaches its oldest or
    /// beyond, up to its capacity. False (and nothing changed) when there is
    /// a gap between them.
    bool prepend(std::uint64_t last_older_id, std::vector<Frame> older);
    void drop_oldest();
    void clear();
    /// The newest `count` messages at most, oldest first.
    std::vector<Frame> newest(std::size_t count) const;
    /// The messages with ids above `id`, oldest first; the newest `limit` of
    /// them when there are more, or when some are no longer in the ring.
    std::vector<Frame> after(std::uint64_t id, std::size_t limit) const;

    std::size_t size() const noexcept { return messages_.size(); }
    bool full() const noexcept { return messages_.size() >= capacity_; }
    /// The bytes of the messages it holds.
    std::size_t bytes() const noexcept { return bytes_; }

  private:
    std::size_t capacity_;
    std::deque<Frame> messages_;
    std::uint64_t first_id_ = 0;  // of messages_.front()
    std::size_t bytes_ = 0;
};

/// A short random string naming a new history (rule 12).
std::string new_epoch();

/// A "history" frame of `room` holding `messages` (serialised "message"
/// frames, oldest first) stamped `stamp`: the repeated field is written from
/// the stored bytes, with no re-encoding.
Frame history_frame(std::span<const Frame> messages, std::int64_t stamp,
                    const std::string& room = {});

}  // namespace chat::hub
