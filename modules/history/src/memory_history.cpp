#include "chat/history/memory_history.hpp"

#include <algorithm>

namespace chat::history {

MemoryHistory::MemoryHistory(const Config& config, metrics::Metrics* metrics)
    : keep_(config.keep),
      max_rooms_(config.max_rooms),
      metrics_(metrics),
      epoch_(hub::new_epoch()) {
    rooms_.try_emplace("");
}

void MemoryHistory::count_rooms(std::int64_t n) noexcept {
    if (metrics_ != nullptr) {
        metrics_->add(metrics_->rooms_kept, n);
    }
}

hub::History::Start MemoryHistory::start(std::size_t newest) {
    std::lock_guard lock(mutex_);
    const auto& lobby = rooms_.at("");
    return {epoch_, lobby.last_id(), before(lobby, UINT64_MAX, newest)};
}

std::vector<hub::Frame> MemoryHistory::before(const Room& room, std::uint64_t before,
                                              std::size_t limit) {
    // Ids first_id .. before - 1, the newest `limit` of them.
    if (before <= room.first_id || room.messages.empty()) {
        return {};
    }
    const auto end = std::min<std::uint64_t>(before - room.first_id, room.messages.size());
    const auto begin = end > limit ? end - limit : 0;
    return {room.messages.begin() + static_cast<std::ptrdiff_t>(begin),
            room.messages.begin() + static_cast<std::ptrdiff_t>(end)};
}

void MemoryHistory::touch(const std::string& name, Room& room) {
    if (!room.occupied) {
        quiet_.erase(room.activity);
    }
    room.activity = ++activity_;
    if (!room.occupied && !name.empty()) {
        quiet_.emplace(room.activity, name);
    }
}

void MemoryHistory::forget_quietest() {
    const auto room = rooms_.find(quiet_.begin()->second);
    quiet_.erase(quiet_.begin());
    forget(room);
}

void MemoryHistory::forget(std::unordered_map<std::string, Room>::iterator room) {
    // Its count outlives it: a room made again under its name counts on.
    if (const auto last_id = room->second.last_id(); last_id > 0) {
        const auto [earlier, added] = forgotten_.try_emplace(room->first, last_id);
        earlier->second = std::max(earlier->second, last_id);
        if (added) {
            forgotten_order_.push_back(room->first);
        }
        if (forgotten_.size() > max_rooms_) {
            const auto oldest = forgotten_.find(forgotten_order_.front());
            floor_ = std::max(floor_, oldest->second);
            forgotten_.erase(oldest);
            forgotten_order_.pop_front();
        }
    }
    held_ -= room->second.messages.size();
    rooms_.erase(room);
    count_rooms(-1);
}

void MemoryHistory::open_room(const std::string& room, std::size_t newest, RoomReply reply) {
    hub::RoomStart start;
    start.outcome = hub::RoomStart::Outcome::opened;
    {
        std::lock_guard lock(mutex_);
        auto found = rooms_.find(room);
        if (found == rooms_.end()) {
            if (rooms_.size() - 1 >= max_rooms_) {
                if (quiet_.empty()) {
                    start.outcome = hub::RoomStart::Outcome::too_many;
                }
                if (!quiet_.empty()) {  // the quietest without users goes (rule 17)
                    forget_quietest();
                }
            }
            if (start.outcome == hub::RoomStart::Outcome::opened) {
                found = rooms_.try_emplace(room).first;
                // It counts on from a room of its name forgotten before.
                const auto earlier = forgotten_.find(room);
                found->second.first_id =
                    std::max(floor_, earlier != forgotten_.end() ? earlier->second : 0) + 1;
                touch(room, found->second);
                count_rooms(1);
            }
        }
        if (found != rooms_.end()) {
            quiet_.erase(found->second.activity);
            found->second.occupied = true;
            start.last_id = found->second.last_id();
            start.newest = before(found->second, UINT64_MAX, newest);
        }
    }
    reply(std::move(start));
}

void MemoryHistory::vacate(const std::string& room) {
    std::lock_guard lock(mutex_);
    const auto found = rooms_.find(room);
    if (found == rooms_.end() || room.empty()) {
        return;
    }
    if (found->second.messages.empty()) {
        forget(found);  // a room exists while it has users or messages
        return;
    }
    found->second.occupied = false;
    quiet_.emplace(found->second.activity, room);
}

bool MemoryHistory::try_append(const std::string& room, std::uint64_t id,
                               const hub::Frame& message) {
    std::lock_guard lock(mutex_);
    auto& kept = rooms_[room];  // the hub opened it (or it is the lobby)
    if (kept.messages.empty()) {
        kept.first_id = id;
    }
    kept.messages.push_back(message);
    order_.emplace_back(room, id);
    ++held_;
    touch(room, kept);
    // The oldest of all go, whichever room they are in.
    while (held_ > keep_ && !order_.empty()) {
        const auto& [name, oldest] = order_.front();
        if (const auto in = rooms_.find(name);
            in != rooms_.end() && !in->second.messages.empty() && in->second.first_id == oldest) {
            in->second.messages.pop_front();
            ++in->second.first_id;
            --held_;
        }
        order_.pop_front();
    }
    // Entries of forgotten rooms, skipped above only when they come first.
    if (order_.size() > 2 * held_ + 1024) {
        std::erase_if(order_, [this](const auto& entry) {
            const auto in = rooms_.find(entry.first);
            return in == rooms_.end() || in->second.messages.empty() ||
                   entry.second < in->second.first_id;
        });
    }
    return true;
}

void MemoryHistory::read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                                Reply reply) {
    std::vector<hub::Frame> found;
    {
        std::lock_guard lock(mutex_);
        if (const auto kept = rooms_.find(room); kept != rooms_.end()) {
            found = this->before(kept->second, before, limit);
        }
    }
    reply(std::move(found));
}

}  // namespace chat::history
