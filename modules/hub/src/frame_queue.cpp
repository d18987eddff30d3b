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

FrameQueue::FrameQueue(asio::any_io_executor writer, std::size_t depth, std::size_t max_bytes)
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
        if (waiter_.kept()) {
            waiter.swap(waiter_);
        } else {
            rung_ = true;  // its wait has not begun: it ends at once
        }
    }
    lock.unlock();
    // On the writer's strand, never inline: the pusher may be the hub, on
    // another thread, or the session's own reader.
    waiter.end(writer_);
    return Push::ok;
}

awaitable<void> FrameQueue::doorbell() {
    return asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this](auto handler) {
            std::unique_lock lock(mutex_);
            if (!std::exchange(rung_, false)) {
                waiter_.keep(std::move(handler));
                return;
            }
            lock.unlock();
            net::KeptWait now;
            now.keep(std::move(handler));
            now.end(writer_);
        },
        asio::use_awaitable);
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

FrameQueue::Push FrameQueue::try_push_deferred(std::span<const Frame> frames, bool& wake_needed) {
    const auto bytes = bytes_of(frames);
    std::unique_lock lock(mutex_);
    wake_needed = false;
    if (const auto refused = refusal(frames.size(), bytes)) {
        return *refused;
    }
    pending_.insert(pending_.end(), frames.begin(), frames.end());
    pending_bytes_ += bytes;
    // Deferring must never be what fills the queue: half full, wake now. (The
    // hub queues at most 64 commands' frames per round of turns, below half
    // of the default depth, so this is for small queues and long lines.)
    if (waiting_ && filling()) {
        return pushed(lock);
    }
    // Owed once, whether the writer waits or is still writing: back from a
    // write, it waits for this turn rather than write a few frames at once.
    wake_needed = !std::exchange(wake_owed_, true);
    return Push::ok;
}

bool FrameQueue::filling() const {
    return pending_.size() + in_flight_ >= depth_ / 2 ||
           pending_bytes_ + in_flight_bytes_ >= max_bytes_ / 2;
}

bool FrameQueue::wake(WakeQueue::Turn& turn) {
    std::unique_lock lock(mutex_);
    wake_owed_ = false;
    if (!waiting_) {
        return false;  // busy: it looks again by itself, or it has ended
    }
    turn_ = std::move(turn);
    pushed(lock);
    return true;
}

void FrameQueue::wake() {
    std::unique_lock lock(mutex_);
    wake_owed_ = false;
    pushed(lock);
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
    WakeQueue::Turn turn;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        pending_.clear();
        pending_bytes_ = 0;
        in_flight_ = 0;
        in_flight_bytes_ = 0;
        waiting_ = false;
        rung_ = false;
        turn = std::move(turn_);
    }
    // Given back outside the lock: the next writer in line is woken.
}

std::size_t FrameQueue::size() const {
    std::lock_guard lock(mutex_);
    return pending_.size() + in_flight_;
}

std::size_t FrameQueue::bytes() const {
    std::lock_guard lock(mutex_);
    return pending_bytes_ + in_flight_bytes_;
}

void FrameQueue::end_turn() {
    WakeQueue::Turn turn;
    {
        std::lock_guard lock(mutex_);
        turn = std::move(turn_);
    }
    // Given back outside the lock: the next writer in line is woken.
}

void FrameQueue::back_for_more(std::vector<Frame>& frames) {
    frames.clear();
    end_turn();  // what the turn was for has left
}

std::optional<FrameQueue::Batch> FrameQueue::try_take(std::vector<Frame>& frames) {
    WakeQueue::Turn unused;  // woken in its turn with nothing to take: given back unlocked
    const std::lock_guard lock(mutex_);
    in_flight_ = 0;
    in_flight_bytes_ = 0;
    // Frames the hub owes a turn for wait for it (and for more frames),
    // unless the queue is filling or closing.
    const bool wait_for_turn = wake_owed_ && !filling() && !closed_;
    if (!pending_.empty() && !wait_for_turn) {
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
    unused = std::move(turn_);
    waiting_ = true;
    return std::nullopt;
}

awaitable<FrameQueue::Batch> FrameQueue::next_batch(std::vector<Frame>& frames) {
    back_for_more(frames);
    for (;;) {
        if (const auto batch = try_take(frames)) {
            co_return *batch;
        }
        co_await doorbell();  // a push since try_take rang it already
    }
}

}  // namespace chat::hub
