#include "chat/history/memory_history.hpp"

#include <algorithm>

namespace chat::history {

MemoryHistory::MemoryHistory(const Config& config, metrics::Metrics* metrics)
    : keep_(config.keep), max_rooms_(config.max_rooms), metrics_(metrics), epoch_(hub::new_epoch()) {
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
                    rooms_.erase(quiet_.begin()->second);
                    quiet_.erase(quiet_.begin());
                    count_rooms(-1);
                }
            }
            if (start.outcome == hub::RoomStart::Outcome::opened) {
                found = rooms_.try_emplace(room).first;
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
        rooms_.erase(found);  // a room exists while it has users or messages
        count_rooms(-1);
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
    if (kept.messages.size() > keep_) {
        kept.messages.pop_front();
        ++kept.first_id;
    }
    touch(room, kept);
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
