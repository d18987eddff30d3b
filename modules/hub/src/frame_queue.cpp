#include "chat/hub/frame_queue.hpp"

namespace chat::hub {

namespace {
// Idle connections keep little: a batch vector that grew under load is given
// back when the writer goes idle (design: memory per idle connection is small).
constexpr std::size_t kept_capacity = 32;

void release_if_large(std::vector<Frame>& frames) {
    if (frames.capacity() > kept_capacity) {
        std::vector<Frame>().swap(frames);
    }
}
}  // namespace

FrameQueue::FrameQueue(const asio::any_io_executor& writer, std::size_t depth)
    : depth_(depth == 0 ? 1 : depth), doorbell_(writer, 1) {}

FrameQueue::~FrameQueue() {
    if (round_) {
        round_->leave();  // a writer that ended without coming back
    }
}

std::optional<FrameQueue::Push> FrameQueue::refusal() const {
    if (closed_) {
        return Push::closed;
    }
    if (pending_.size() + in_flight_ >= depth_) {
        return Push::full;
    }
    return std::nullopt;
}

FrameQueue::Push FrameQueue::pushed(std::unique_lock<std::mutex>& lock) {
    const bool wake = std::exchange(waiting_, false);
    lock.unlock();
    if (wake) {
        doorbell_.try_send(error_code{});
    }
    return Push::ok;
}

FrameQueue::Push FrameQueue::try_push(const Frame& frame) {
    std::unique_lock lock(mutex_);
    if (const auto refused = refusal()) {
        return *refused;
    }
    pending_.push_back(frame);
    return pushed(lock);
}

FrameQueue::Push FrameQueue::try_push_deferred(const Frame& frame, bool& wake_needed) {
    std::unique_lock lock(mutex_);
    wake_needed = false;
    if (const auto refused = refusal()) {
        return *refused;
    }
    pending_.push_back(frame);
    if (!waiting_) {
        return Push::ok;  // the writer is busy and will look again
    }
    // Deferring must never be what fills the queue: a quarter full, wake now.
    if (pending_.size() + in_flight_ >= depth_ / 4) {
        return pushed(lock);
    }
    wake_needed = !std::exchange(wake_owed_, true);
    return Push::ok;
}

void FrameQueue::wake(const std::shared_ptr<WakeRound>& round) {
    std::unique_lock lock(mutex_);
    wake_owed_ = false;
    if (round && waiting_ && !round_) {
        round->join();
        round_ = round;
    }
    pushed(lock);
}

void FrameQueue::close(std::optional<CloseCode> code) {
    std::unique_lock lock(mutex_);
    if (closed_) {
        return;
    }
    closed_ = true;
    close_code_ = code;
    if (!code) {
        pending_.clear();
    }
    pushed(lock);
}

std::size_t FrameQueue::size() const {
    std::lock_guard lock(mutex_);
    return pending_.size() + in_flight_;
}

awaitable<FrameQueue::Batch> FrameQueue::next_batch(std::vector<Frame>& frames) {
    frames.clear();
    std::shared_ptr<WakeRound> done;
    {
        std::lock_guard lock(mutex_);
        done = std::move(round_);  // back for more: the round's work is written
    }
    if (done) {
        done->leave();
    }
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            in_flight_ = 0;
            if (!pending_.empty()) {
                frames.swap(pending_);
                in_flight_ = frames.size();
                co_return Batch{closed_, close_code_};
            }
            if (closed_) {
                co_return Batch{true, close_code_};
            }
            release_if_large(frames);
            release_if_large(pending_);
            waiting_ = true;
        }
        // A push between unlocking and here left a signal in the doorbell's buffer.
        auto [ec] = co_await doorbell_.async_receive(use_nothrow);
        if (ec) {
            co_return Batch{true, std::nullopt};
        }
    }
}

}  // namespace chat::hub
