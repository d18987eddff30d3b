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

#include <boost/asio/io_context.hpp>

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_clock.hpp"
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

    /// Where the consumer waits: its session's io_context, by type (a
    /// type-erased executor is 56 bytes more of every connection, and each
    /// wake-up posted through it goes through its erasure).
    using WriterExecutor = asio::io_context::executor_type;

    /// `writer` is the executor the consumer waits on (its session's thread's).
    FrameQueue(WriterExecutor writer, std::size_t depth, std::size_t max_bytes = default_max_bytes);
    FrameQueue(const FrameQueue&) = delete;
    FrameQueue& operator=(const FrameQueue&) = delete;

    Push try_push(const Frame& frame);

    /// The same, held: the writer does not take these frames (nor any queued
    /// after them) until ring(), so that many go in one write. When
    /// `ring_owed` comes back true the caller owes the queue that ring (the
    /// hub: a turn of its WriteScheduler). A queue half full rings at once
    /// all the same: holding must never be what fills it.
    Push try_push_held(const Frame& frame, bool& ring_owed) {
        return try_push_held(std::span(&frame, 1), ring_owed);
    }
    /// Several frames, one after the other with nothing in between, or none
    /// of them when they do not all fit. In bytes they are judged as one
    /// delivery that may overshoot the bound: refused only when the queue is
    /// full already (see refusal()).
    Push try_push_held(std::span<const Frame> frames, bool& ring_owed);
    /// Lets the writer take what is held before it, waking it if it waits;
    /// true if it was waiting, false if it is busy (it takes them when back)
    /// or has ended. (Frames held after the ring wait for the next: a writer
    /// rung for them finds nothing, ends its turn and waits again.)
    bool ring();

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
    /// what it holds, and ring() finds nobody waiting from now on. Without
    /// this a writer gone while it waited would be handed turns it can never
    /// give back.
    void end_consumer();
    /// close() or end_consumer() has been called.
    bool closed() const;
    /// Frames queued or being written.
    std::size_t size() const;
    /// Their bytes.
    std::size_t bytes() const;
    /// The executor the consumer runs on (its session's thread's).
    const WriterExecutor& writer_executor() const noexcept { return writer_; }

    /// What the writer is to do after writing the frames it was handed.
    struct Batch {
        bool last = false;                           // nothing follows: stop writing
        std::optional<proto::CloseCode> close_code;  // with `last`: send a close frame
    };

    /// The writer's wait: replaces `frames` (which it has written: they no
    /// longer count) with everything queued, waiting until there is something
    /// to take or the queue is closed. The frames handed out count towards
    /// `depth` and `max_bytes` until the next call (while they are written,
    /// what the socket does not take at once is copied and held). Only one
    /// consumer may call it. It may come back with no frames (woken for
    /// frames that still wait for their ring): the writer ends a turn it
    /// holds and calls again. An operation, not a coroutine: a connection
    /// waiting here keeps no coroutine frame of its own (docs/architecture.md,
    /// memory per idle connection).
    awaitable<Batch> take(std::vector<Frame>& frames);
    /// take() without the wait: nullopt when it would wait. (take() posts
    /// even a batch it finds at once; a writer back from a write tries this
    /// first, so as not to queue behind every handler in the scheduler.)
    std::optional<Batch> try_take(std::vector<Frame>& frames);

  private:
    template <typename Handler>
    friend class TakeOperation;

    /// try_take() under the lock; when it finds nothing, the writer waits.
    std::optional<Batch> take_locked(std::vector<Frame>& frames);
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
    bool waiting_ = false;  // the writer waits in take()
    bool held_ = false;     // frames wait for ring()
    // The writer's wait, ended by the push that ends it: under the same lock
    // as the frames, a wake-up costs one lock and one posted handler, where a
    // channel added its own lock, operation and buffer (576 bytes of
    // std::deque per connection: docs/architecture.md, memory per idle
    // connection). Never cancelled (docs/architecture.md, trap 2).
    net::KeptWait waiter_;
    const WriterExecutor writer_;  // where waiter_ is resumed
};

}  // namespace chat::hub
