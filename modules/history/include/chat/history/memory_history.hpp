#pragma once
// History in memory only (--history-db ""): lost with the process.

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "chat/history/config.hpp"
#include "chat/hub/history.hpp"
#include "chat/metrics/metrics.hpp"

namespace chat::history {

/// The newest `keep` messages in memory, of all rooms together (a room's
/// oldest go first when they are the oldest of all): memory stays bounded
/// however many rooms there are. A fresh epoch per process (a restart starts
/// the count again: rule 12). Rooms follow
/// the same rules as in the SQLite file (rule 17): at most `max_rooms`
/// besides the lobby, the quietest without users forgotten for a new one,
/// its last id remembered so that a room made again under its name counts
/// on (rule 12). Those counts are bounded too: past `max_rooms` of them the
/// oldest is folded into one floor that every new room counts on from.
/// Every call answers at once, on the caller's thread.
class MemoryHistory final : public hub::History {
  public:
    /// `metrics`, when given, counts the rooms kept.
    explicit MemoryHistory(const Config& config, metrics::Metrics* metrics = nullptr);

    Start start(std::size_t newest) override;
    void open_room(const std::string& room, std::size_t newest, RoomReply reply) override;
    void vacate(const std::string& room) override;
    bool try_append(const std::string& room, std::uint64_t id, const hub::Frame& message) override;
    void read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                     Reply reply) override;
    /// Nothing to record: the next process starts a new epoch anyway.
    void stopped(bool /*all_handed_over*/) override {}

  private:
    struct Room {
        std::deque<hub::Frame> messages;  // consecutive ids, the newest last
        std::uint64_t first_id = 1;       // of messages.front()
        std::uint64_t activity = 0;       // of its last message or opening: rises
        bool occupied = false;            // the hub holds it
        std::uint64_t last_id() const noexcept { return first_id + messages.size() - 1; }
    };
    /// The newest `limit` messages of `room` below `before`, oldest first.
    static std::vector<hub::Frame> before(const Room& room, std::uint64_t before,
                                          std::size_t limit);
    /// Marks `room` active now (in quiet_, unless the hub holds it).
    void touch(const std::string& name, Room& room);
    /// Forgets the quietest room without users.
    void forget_quietest();
    /// Forgets `room`, remembering its count.
    void forget(std::unordered_map<std::string, Room>::iterator room);

    /// Counts `n` more rooms (or fewer) besides the lobby.
    void count_rooms(std::int64_t n) noexcept;

    const std::size_t keep_;
    const std::size_t max_rooms_;
    metrics::Metrics* metrics_;
    const std::string epoch_;
    std::mutex mutex_;
    std::unordered_map<std::string, Room> rooms_;  // the lobby ("") and every room that exists
    // The rooms without users by activity, quietest first: the next to forget.
    std::map<std::uint64_t, std::string> quiet_;
    std::uint64_t activity_ = 0;
    // Every message held, oldest first: its room and id; and how many are
    // held (entries of forgotten rooms are skipped when they come first).
    std::deque<std::pair<std::string, std::uint64_t>> order_;
    std::size_t held_ = 0;
    // The last ids of rooms forgotten with messages, by name, oldest first in
    // forgotten_order_; and the highest of those no longer held by name.
    std::unordered_map<std::string, std::uint64_t> forgotten_;
    std::deque<std::string> forgotten_order_;
    std::uint64_t floor_ = 0;
};

}  // namespace chat::history
