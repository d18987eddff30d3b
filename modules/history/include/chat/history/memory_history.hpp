#pragma once
// History in memory only (--history-db ""): lost with the process.

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "chat/hub/history.hpp"

namespace chat::history {

/// The newest `keep` messages in memory, under a fresh epoch per process (a
/// restart starts the count again: rule 12).
class MemoryHistory final : public hub::History {
  public:
    explicit MemoryHistory(std::size_t keep);

    Start start(std::size_t newest) override;
    bool try_append(std::uint64_t id, const hub::Frame& message) override;
    /// Answers at once, on the caller's thread.
    void read_before(std::uint64_t before, std::size_t limit, Reply reply) override;
    /// Nothing to record: the next process starts a new epoch anyway.
    void stopped(std::uint64_t /*last_broadcast_id*/) override {}

  private:
    const std::size_t keep_;
    const std::string epoch_;
    std::mutex mutex_;
    std::deque<hub::Frame> messages_;  // consecutive ids, the newest last
    std::uint64_t first_id_ = 1;       // of messages_.front()
};

}  // namespace chat::history
