#pragma once
// The bounded queue of outgoing frames of one connection: the only thing the
// hub and a session share.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_clock.hpp"
#include "chat/hub/wake_queue.hpp"
#include "chat/net/asio.hpp"
#include "chat/net/kept_wait.hpp"

namespace chat::hub {

/// A serialized ChatRequest, shared by every recipient: serialised once, never copied.
using Frame = std::shared_ptr<const std::string>;

/// Producers (the hub, the session's reader) push from any thread without ever
/// waiting; one consumer (the session's writer) takes everything queued at once.
/// At most `depth` frames and `max_bytes` bytes are queued or being written: a
/// push beyond either fails, and the caller drops the client as too slow (rule
/// 9), so memory stays bounded. The frame count alone bounds nothing when a
/// frame can be a history page of 100 messages of 4 KB: 256 of those are 100 MB.
/// A frame larger than `max_bytes` is still taken when the queue is empty
/// (nothing queued or being written), and then fills it.
class FrameQueue {
  public:
    enum class Push { ok, full, closed };

    /// Rule 9's default bound in bytes: 8 MiB.
    static constexpr std::size_t default_max_bytes = std::size_t{8} << 20;

    /// `writer` is the executor the consumer waits on (its session's strand).
    FrameQueue(asio::any_io_executor writer, std::size_t depth,
               std::size_t max_bytes = default_max_bytes);
    FrameQueue(const FrameQueue&) = delete;
    FrameQueue& operator=(const FrameQueue&) = delete;

    Push try_push(const Frame& frame);

    /// The same without waking the writer: when `wake_needed` comes back true,
    /// the caller owes the writer a wake() (the hub: a turn in its WakeQueue),
    /// and until then the writer leaves these frames queued, so that many go
    /// in one write. A queue half full wakes its writer at once all the same.
    Push try_push_deferred(const Frame& frame, bool& wake_needed) {
        return try_push_deferred(std::span(&frame, 1), wake_needed);
    }
    /// Several frames, one after the other with nothing in between, or none
    /// of them when they do not all fit. In bytes they are judged as one
    /// delivery that may overshoot the bound: refused only when the queue is
    /// full already (see refusal()).
    Push try_push_deferred(std::span<const Frame> frames, bool& wake_needed);
    /// Wakes the writer if it waits. With a turn: only if it waits, and then it
    /// holds the turn until it is back for more (its write has left) or ends
    /// it; true if it took the turn.
    bool wake(WakeQueue::Turn& turn);
    void wake();

    /// Pushes the frame `make(stamp)` builds, stamped by `clock` under the queue's
    /// lock, so that its time is never earlier than a frame queued before it.
    /// Not built at all when the queue is closed or full in frames; refused
    /// (and dropped) when it does not fit in bytes.
    template <typename MakeFrame>
    Push try_push_stamped(FrameClock& clock, MakeFrame&& make) {
        std::unique_lock lock(mutex_);
        if (const auto refused = refusal(1, 0)) {
            return *refused;
        }
        Frame frame = make(clock.stamp_local());
        if (const auto refused = refusal(1, frame->size())) {
            return *refused;
        }
        pending_bytes_ += frame->size();
        pending_.push_back(std::move(frame));
        return pushed(lock);
    }

    /// No more frames will be accepted. With a code, the writer writes what is
    /// queued and then a close frame with that code; without one (the connection
    /// is already gone) it stops at once. Idempotent: the first call decides.
    void close(std::optional<proto::CloseCode> code);
    /// The writer has ended, however it ended (an error, an exception, its
    /// coroutine destroyed): the queue closes without a close frame, drops
    /// what it holds, gives back the writer's turn and takes no turn again.
    /// Without this a writer gone while it waited would be handed turns it
    /// can never give back.
    void end_consumer();
    /// Frames queued or being written.
    std::size_t size() const;
    /// Their bytes.
    std::size_t bytes() const;
    /// The executor the consumer runs on (its session's strand).
    const asio::any_io_executor& writer_executor() const noexcept { return writer_; }

    /// What the writer is to do after writing the frames it was handed.
    struct Batch {
        bool last = false;                           // nothing follows: stop writing
        std::optional<proto::CloseCode> close_code;  // with `last`: send a close frame
    };

    /// The writer's wait: replaces `frames` with everything queued, waiting until
    /// there is something or the queue is closed. The frames handed out count
    /// towards `depth` and `max_bytes` until the next call (while they are
    /// written, what the socket does not take at once is copied and held). Only one consumer may
    /// call it. Woken in its turn, the writer holds the turn until it calls this again or
    /// end_turn(): the hub takes new commands once every turn has ended. It is back_for_more(),
    /// then try_take() until it gives a batch, awaiting doorbell() in between; a session's writer
    /// runs that loop in its own frame rather than keep this one for the life of its connection.
    awaitable<Batch> next_batch(std::vector<Frame>& frames);
    /// The frames handed out have been written: they no longer count, and the
    /// turn (if any) ends.
    void back_for_more(std::vector<Frame>& frames);
    /// Everything queued, or what ends the writer; nullopt if the writer is
    /// to await doorbell() first.
    std::optional<Batch> try_take(std::vector<Frame>& frames);
    /// Until a push rings (at once if one has since try_take()).
    awaitable<void> doorbell();
    /// The writer ends its turn before it is back (its socket is full: the
    /// rest of its write waits for the peer, and the others need not).
    void end_turn();

  private:
    /// Whether `frames` frames of `bytes` bytes are refused (under the lock).
    std::optional<Push> refusal(std::size_t frames, std::size_t bytes) const;
    Push pushed(std::unique_lock<std::mutex>& lock);  // under the lock; releases it
    bool filling() const;                             // under the lock

    mutable std::mutex mutex_;
    std::vector<Frame> pending_;
    std::size_t pending_bytes_ = 0;
    std::size_t in_flight_ = 0;        // handed to the writer, not yet written
    std::size_t in_flight_bytes_ = 0;  // their bytes
    const std::size_t depth_;
    const std::size_t max_bytes_;
    bool closed_ = false;
    std::optional<proto::CloseCode> close_code_;
    bool waiting_ = false;    // the writer waits, or is about to
    bool rung_ = false;       // a push came before the writer's wait began
    bool wake_owed_ = false;  // the hub has put the writer in line for a turn
    WakeQueue::Turn turn_;    // the writer was woken in its turn
    // The writer's wait, ended by the push that ends it: under the same lock
    // as the frames, a wake-up costs one lock and one posted handler, where a
    // channel added its own lock, operation and buffer (576 bytes of
    // std::deque per connection: docs/architecture.md, memory per idle
    // connection). Never cancelled (docs/architecture.md, trap 2).
    net::KeptWait waiter_;
    const asio::any_io_executor writer_;  // where waiter_ is resumed
};

}  // namespace chat::hub
