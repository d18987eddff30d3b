#include "chat/history/memory_history.hpp"

#include <algorithm>
#include <random>
#include <string_view>

namespace chat::history {

MemoryHistory::MemoryHistory(std::size_t keep) : keep_(keep), epoch_(hub::new_epoch()) {}

hub::History::Start MemoryHistory::start(std::size_t newest) {
    std::lock_guard lock(mutex_);
    const auto n = std::min(newest, messages_.size());
    return {epoch_,
            first_id_ + messages_.size() - 1,
            {messages_.end() - static_cast<std::ptrdiff_t>(n), messages_.end()}};
}

bool MemoryHistory::try_append(std::uint64_t id, const hub::Frame& message) {
    std::lock_guard lock(mutex_);
    if (messages_.empty()) {
        first_id_ = id;
    }
    messages_.push_back(message);
    if (messages_.size() > keep_) {
        messages_.pop_front();
        ++first_id_;
    }
    return true;
}

void MemoryHistory::read_before(std::uint64_t before, std::size_t limit, Reply reply) {
    std::vector<hub::Frame> found;
    {
        std::lock_guard lock(mutex_);
        // Ids first_id_ .. before - 1, the newest `limit` of them.
        if (before > first_id_ && !messages_.empty()) {
            const auto end = std::min<std::uint64_t>(before - first_id_, messages_.size());
            const auto begin = end > limit ? end - limit : 0;
            found.assign(messages_.begin() + static_cast<std::ptrdiff_t>(begin),
                         messages_.begin() + static_cast<std::ptrdiff_t>(end));
        }
    }
    reply(std::move(found));
}

}  // namespace chat::history
