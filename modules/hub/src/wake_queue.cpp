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
    hand_out();  // a place of our own is counted: hand it to the first in line
}

void WakeQueue::give_back(std::uint64_t id) {
    {
        std::lock_guard lock(mutex_);
        if (held_.erase(id) == 0) {
            return;  // revoked: its place was passed on then
        }
    }
    hand_out();
}

void WakeQueue::release_place(std::unique_lock<std::mutex>& lock) {
    if (--awake_ == 0 && on_idle_) {
        lock.unlock();
        on_idle_();
    }
}

void WakeQueue::hand_out() {
    for (;;) {
        std::shared_ptr<Peer> next;
        std::uint64_t id = 0;
        {
            std::unique_lock lock(mutex_);
            if (line_.empty()) {
                release_place(lock);
                return;
            }
            next = line_.front().lock();
            line_.pop_front();
            if (!next) {
                continue;
            }
            id = ++last_turn_;
            held_.emplace(id, Holder{next, Clock::now()});
        }
        Turn turn(shared_from_this(), id);
        if (next->frames().wake(turn)) {
            return;  // the writer holds the place now
        }
        // Not waiting (busy, or ended): the place stays ours for the next in
        // line. Forgotten here without giving it back, so no recursion.
        turn.disarm();
        std::lock_guard lock(mutex_);
        held_.erase(id);
    }
}

std::vector<std::shared_ptr<Peer>> WakeQueue::revoke_overdue(Clock::duration limit) {
    std::vector<std::shared_ptr<Peer>> overdue;
    std::size_t freed = 0;
    {
        std::lock_guard lock(mutex_);
        const auto cutoff = Clock::now() - limit;
        for (auto holder = held_.begin(); holder != held_.end();) {
            if (holder->second.since > cutoff) {
                ++holder;
                continue;
            }
            if (auto peer = holder->second.peer.lock()) {
                overdue.push_back(std::move(peer));
            }
            holder = held_.erase(holder);
            ++freed;
        }
    }
    for (; freed > 0; --freed) {
        hand_out();
    }
    return overdue;
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
