#include "chat/hub/frame_queue.hpp"

namespace chat::hub {

namespace {
// Idle connections keep little: a batch vector that grew under load is given
// back when the writer goes idle (docs/architecture.md, memory per idle connection).
constexpr std::size_t kept_capacity = 32;

void release_if_large(std::vector<Frame>& frames) {
    if (frames.empty() && frames.capacity() > kept_capacity) {
        std::vector<Frame>().swap(frames);
    }
}

std::size_t bytes_of(std::span<const Frame> frames) {
    std::size_t bytes = 0;
    for (const auto& frame : frames) {
        bytes += frame->size();
    }
    return bytes;
}
}  // namespace

FrameQueue::FrameQueue(WriterExecutor writer, std::size_t depth, std::size_t max_bytes)
    : depth_(depth == 0 ? 1 : depth),
      max_bytes_(max_bytes == 0 ? 1 : max_bytes),
      writer_(std::move(writer)) {}

std::optional<FrameQueue::Push> FrameQueue::refusal(std::size_t frames, std::size_t bytes) const {
    if (closed_) {
        return Push::closed;
    }
    if (pending_.size() + in_flight_ + frames > depth_) {
        return Push::full;
    }
    // An empty queue takes a push whatever its size (rule 9): a frame larger
    // than the bound still goes out, and fills the queue until it has.
    if (pending_.empty() && in_flight_ == 0) {
        return std::nullopt;
    }
    const auto queued = pending_bytes_ + in_flight_bytes_;
    if (frames > 1) {
        // Frames that go together are a newcomer's welcome and its history
        // (rule 13; Hub::apply_join, the only such push). They come once per
        // connection, their size is set by the configuration (--resume-limit
        // messages of up to --max-content-bytes), not by what a client asks,
        // and clients accept such frames up to 8 MiB and more. What can be
        // queued before them is the client's own answers (a heartbeat's, an
        // error): refusing the welcome because one of those is still being
        // written would drop a client that did nothing wrong. So they may
        // overshoot the bound, unless the queue is full already: a connection
        // holds at most max_bytes plus one welcome.
        return queued >= max_bytes_ ? std::optional(Push::full) : std::nullopt;
    }
    if (queued + bytes > max_bytes_) {
        return Push::full;
    }
    return std::nullopt;
}

FrameQueue::Push FrameQueue::pushed(std::unique_lock<std::mutex>& lock) {
    net::KeptWait waiter;
    if (std::exchange(waiting_, false)) {
        waiter.swap(waiter_);
    }
    lock.unlock();
    // On the writer's strand, never inline: the pusher may be the hub, on
    // another thread, or the session's own reader.
    waiter.end(writer_);
    return Push::ok;
}

FrameQueue::Push FrameQueue::try_push(const Frame& frame) {
    std::unique_lock lock(mutex_);
    if (const auto refused = refusal(1, frame->size())) {
        return *refused;
    }
    pending_.push_back(frame);
    pending_bytes_ += frame->size();
    return pushed(lock);
}

FrameQueue::Push FrameQueue::try_push_held(std::span<const Frame> frames, bool& ring_owed) {
    const auto bytes = bytes_of(frames);
    std::unique_lock lock(mutex_);
    ring_owed = false;
    if (const auto refused = refusal(frames.size(), bytes)) {
        return *refused;
    }
    pending_.insert(pending_.end(), frames.begin(), frames.end());
    pending_bytes_ += bytes;
    // Holding must never be what fills the queue: half full, wake now. (The
    // hub queues at most 64 frames a queue per round of turns, below half
    // of the default depth, so this is for small queues and long lines.)
    if (waiting_ && filling()) {
        return pushed(lock);
    }
    // Owed once, whether the writer waits or is still writing: back from a
    // write, it waits for this ring rather than write a few frames at once.
    ring_owed = !std::exchange(held_, true);
    return Push::ok;
}

bool FrameQueue::filling() const {
    return pending_.size() + in_flight_ >= depth_ / 2 ||
           pending_bytes_ + in_flight_bytes_ >= max_bytes_ / 2;
}

bool FrameQueue::ring() {
    std::unique_lock lock(mutex_);
    held_ = false;
    if (!waiting_) {
        return false;  // busy: it takes them when back, or it has ended
    }
    pushed(lock);
    return true;
}

void FrameQueue::close(std::optional<proto::CloseCode> code) {
    std::unique_lock lock(mutex_);
    if (closed_) {
        return;
    }
    closed_ = true;
    close_code_ = code;
    if (!code) {
        pending_.clear();
        pending_bytes_ = 0;
    }
    pushed(lock);
}

void FrameQueue::end_consumer() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    pending_.clear();
    pending_bytes_ = 0;
    in_flight_ = 0;
    in_flight_bytes_ = 0;
    waiting_ = false;
}

bool FrameQueue::closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
}

std::size_t FrameQueue::size() const {
    std::lock_guard lock(mutex_);
    return pending_.size() + in_flight_;
}

std::size_t FrameQueue::bytes() const {
    std::lock_guard lock(mutex_);
    return pending_bytes_ + in_flight_bytes_;
}

std::optional<FrameQueue::Batch> FrameQueue::take_locked(std::vector<Frame>& frames) {
    frames.clear();  // written: they no longer count
    in_flight_ = 0;
    in_flight_bytes_ = 0;
    // Held frames wait for their ring (and for more frames), unless the
    // queue is filling or closing.
    const bool wait_for_ring = held_ && !filling() && !closed_;
    if (!pending_.empty() && !wait_for_ring) {
        frames.swap(pending_);
        in_flight_ = frames.size();
        in_flight_bytes_ = std::exchange(pending_bytes_, 0);
        return Batch{closed_, close_code_};
    }
    if (closed_) {
        return Batch{true, close_code_};
    }
    release_if_large(frames);
    release_if_large(pending_);
    return std::nullopt;
}

std::optional<FrameQueue::Batch> FrameQueue::try_take(std::vector<Frame>& frames) {
    const std::lock_guard lock(mutex_);
    return take_locked(frames);
}

/// take()'s wait, kept in the queue's waiter_ until a push, a ring or a
/// close resumes it (on the writer's executor).
template <typename Handler>
class TakeOperation {
  public:
    TakeOperation(FrameQueue& queue, std::vector<Frame>& frames, Handler handler)
        : queue_(&queue), frames_(&frames), handler_(std::move(handler)) {}

    /// Under the queue's lock: completes through the writer's executor if
    /// there is something to take, else keeps itself as the queue's wait.
    void start(std::unique_lock<std::mutex>& lock) {
        if (auto batch = queue_->take_locked(*frames_)) {
            lock.unlock();
            asio::post(queue_->writer_, [handler = std::move(handler_), batch = *batch]() mutable {
                std::move(handler)(batch);
            });
            return;
        }
        queue_->waiting_ = true;
        auto& waiter = queue_->waiter_;
        waiter.keep(std::move(*this));
    }

    void operator()() {
        std::unique_lock lock(queue_->mutex_);
        const auto batch = queue_->take_locked(*frames_);
        lock.unlock();
        // Nothing when rung for frames that still wait for their ring: the
        // writer comes back (ending a turn it may hold) rather than keep a
        // place while it waits.
        std::move(handler_)(batch.value_or(FrameQueue::Batch{}));
    }

  private:
    FrameQueue* queue_;
    std::vector<Frame>* frames_;
    Handler handler_;
};

awaitable<FrameQueue::Batch> FrameQueue::take(std::vector<Frame>& frames) {
    return asio::async_initiate<decltype(asio::use_awaitable), void(Batch)>(
        [this, &frames](auto handler) {
            std::unique_lock lock(mutex_);
            TakeOperation<decltype(handler)>(*this, frames, std::move(handler)).start(lock);
        },
        asio::use_awaitable);
}

}  // namespace chat::hub
