#include "chat/hub/write_scheduler.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "chat/hub/peer.hpp"

namespace chat::hub {

WriteScheduler::WriteScheduler(const asio::any_io_executor& hub, std::size_t awake_limit)
    : awake_limit_(std::clamp<std::size_t>(awake_limit, 1, max_places)), idle_(hub) {
    // Made now, so that ending a turn (noexcept) allocates nothing; a limit
    // above this grows the places once, as they are first used.
    const auto places = std::min<std::size_t>(awake_limit_, 1024);
    places_.reserve(places);
    free_places_.reserve(places);
}

std::uint64_t WriteScheduler::hold(const std::shared_ptr<Peer>& peer) {
    std::size_t index = places_.size();
    if (free_places_.empty()) {
        places_.emplace_back();
        free_places_.reserve(places_.size());  // leave() never allocates
    } else {
        index = free_places_.back();
        free_places_.pop_back();
    }
    // The serial wraps within its bits, never to 0: an id of 0 is no turn.
    last_turn_ = (last_turn_ + 1) & serial_mask;
    if (last_turn_ == 0) {
        last_turn_ = 1;
    }
    const auto id = (last_turn_ << place_bits) | index;
    places_[index] = Place{id, peer, Clock::now()};
    return id;
}

bool WriteScheduler::leave(std::uint64_t id) {
    const auto index = static_cast<std::size_t>(id & place_mask);
    if (index >= places_.size() || places_[index].turn != id) {
        return false;
    }
    places_[index] = Place{};
    free_places_.push_back(index);
    return true;
}

void WriteScheduler::start_turns() {
    if (owed_.empty()) {
        return;
    }
    std::size_t places = 0;
    {
        std::lock_guard lock(mutex_);
        for (auto& peer : owed_) {
            line_.push_back(peer);  // behind those already waiting: first come, first woken
        }
        places = std::min(awake_limit_ - awake_, line_.size());
        awake_ += places;
    }
    owed_.clear();
    for (; places > 0; --places) {
        hand_out();  // a place of our own is counted: hand it to the first in line
    }
}

void WriteScheduler::abandon() {
    std::lock_guard lock(mutex_);
    abandoned_ = true;
    line_.clear();
    places_.clear();  // give_back() finds no turn to pass on
    free_places_.clear();
    awake_ = 0;
}

void WriteScheduler::give_back(std::uint64_t id) {
    {
        std::lock_guard lock(mutex_);
        if (!leave(id)) {
            return;  // taken back: its place was passed on then
        }
    }
    hand_out();
}

void WriteScheduler::release_place(std::unique_lock<std::mutex>& lock) {
    if (--awake_ == 0) {
        lock.unlock();
        asio::post(idle_.get_executor(), [self = weak_from_this()] {
            if (const auto scheduler = self.lock()) {
                scheduler->idle_.cancel();
            }
        });
    }
}

void WriteScheduler::hand_out() {
    for (;;) {
        std::shared_ptr<Peer> next;
        std::uint64_t id = 0;
        {
            std::unique_lock lock(mutex_);
            if (abandoned_) {
                return;  // a give_back() that began before abandon(): nothing goes on
            }
            if (line_.empty()) {
                release_place(lock);
                return;
            }
            next = line_.front().lock();
            line_.pop_front();
            if (!next) {
                continue;
            }
            id = hold(next);
        }
        // The turn is the writer's before its ring: it may write and end the
        // turn before ring() returns. A writer that holds a turn already
        // (still writing its last) is rung without another: it takes the
        // frames when back.
        std::uint64_t none = 0;
        const bool taken =
            next->scheduler_.get() == this && next->turn_.compare_exchange_strong(none, id);
        const bool rung = next->frames().ring();
        if (taken && rung) {
            return;  // the writer holds the place now
        }
        // Not waiting (busy, or ended): the place stays ours for the next in
        // line, unless the writer has ended the turn already (its end_turn()
        // passed the place on).
        std::uint64_t ours = id;
        if (taken && !next->turn_.compare_exchange_strong(ours, 0)) {
            return;
        }
        std::lock_guard lock(mutex_);
        if (!leave(id)) {
            return;  // taken back meanwhile (this thread stalled): its place was passed on then
        }
    }
}

std::vector<std::shared_ptr<Peer>> WriteScheduler::revoke_overdue(Clock::duration limit) {
    std::vector<std::shared_ptr<Peer>> overdue;
    std::size_t freed = 0;
    {
        std::lock_guard lock(mutex_);
        const auto cutoff = Clock::now() - limit;
        for (auto& place : places_) {
            if (place.turn == 0 || place.since > cutoff) {
                continue;
            }
            if (auto peer = place.peer.lock()) {
                overdue.push_back(std::move(peer));
            }
            leave(place.turn);
            ++freed;
        }
    }
    for (; freed > 0; --freed) {
        hand_out();
    }
    return overdue;
}

awaitable<std::vector<std::shared_ptr<Peer>>> WriteScheduler::until_idle(Clock::duration limit) {
    idle_.expires_after(limit);
    if (auto [ec] = co_await idle_.async_wait(use_nothrow); ec) {
        co_return std::vector<std::shared_ptr<Peer>>();  // the last turn ended (or may have)
    }
    co_return revoke_overdue(limit);
}

bool WriteScheduler::busy() const {
    std::lock_guard lock(mutex_);
    return awake_ > 0;  // a non-empty line has every place taken
}

std::size_t WriteScheduler::awake() const {
    std::lock_guard lock(mutex_);
    return awake_;
}

std::size_t WriteScheduler::waiting() const {
    std::lock_guard lock(mutex_);
    return line_.size();
}

void Peer::end_turn() noexcept {
    if (const auto id = turn_.exchange(0); id != 0) {
        scheduler_->give_back(id);
    }
}

}  // namespace chat::hub
