#include "chat/hub/wake_queue.hpp"

#include "chat/hub/peer.hpp"

namespace chat::hub {

void WakeQueue::request(const std::shared_ptr<Peer>& peer) {
    {
        std::lock_guard lock(mutex_);
        line_.push_back(peer);  // behind those already waiting: first come, first woken
        if (awake_ == awake_limit_) {
            return;
        }
        ++awake_;
    }
    // A place of our own is counted: hand it to the first in line.
    Turn(shared_from_this()).reset();
}

void WakeQueue::pass_on() {
    for (;;) {
        std::shared_ptr<Peer> next;
        {
            std::unique_lock lock(mutex_);
            if (line_.empty()) {
                if (--awake_ == 0 && on_idle_) {
                    lock.unlock();
                    on_idle_();
                }
                return;
            }
            next = line_.front().lock();
            line_.pop_front();
        }
        if (!next) {
            continue;
        }
        Turn turn(shared_from_this());
        if (next->frames().wake(turn)) {
            return;  // the writer holds the place now
        }
        // Not waiting (busy, or closed): the place stays ours for the next in
        // line. Dropped here without passing on, so no recursion.
        turn.queue_.reset();
    }
}

bool WakeQueue::busy() const {
    std::lock_guard lock(mutex_);
    return awake_ > 0;  // a non-empty line has every place taken
}

std::size_t WakeQueue::awake() const {
    std::lock_guard lock(mutex_);
    return awake_;
}

std::size_t WakeQueue::waiting() const {
    std::lock_guard lock(mutex_);
    return line_.size();
}

}  // namespace chat::hub
