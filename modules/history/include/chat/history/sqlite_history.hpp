#pragma once
// History in a SQLite file, written by a thread of its own.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>

#include "chat/history/config.hpp"
#include "chat/history/store.hpp"
#include "chat/hub/history.hpp"
#include "chat/metrics/metrics.hpp"

namespace chat::history {

/// The hub hands messages over without waiting; the store thread gathers
/// them for up to 5 ms (or 512 tasks) and writes them in one transaction, so
/// that a busy room costs a commit per batch, not per message (a crash loses
/// at most the messages of one gathering and the transaction in flight). The queue is bounded: when
/// the disk lags, try_append() says no and the hub slows down, losing nothing. Reads (rule 14) go
/// through the same queue, so they see every message handed over before them and are answered in
/// order, but under a bound of their own: clients asking for history never fill the room the hub's
/// appends need (a full append queue holds the whole room back). Opening and
/// vacating rooms (rule 17) are tasks of the same queue, so that the file
/// knows which rooms exist and which the hub holds, and the thread forgets
/// the quietest room without users when one more must be made.
class SqliteHistory final : public hub::History {
  public:
    /// Opens the file (throws OpenError) and starts the thread. At most
    /// `queue_capacity` appends wait for the thread, and at most
    /// `read_capacity` reads wait or are being answered; one more of either
    /// is refused.
    SqliteHistory(const Config& config, metrics::Metrics& metrics,
                  std::size_t queue_capacity = 65'536, std::size_t read_capacity = 1'024);
    /// Writes what is queued and joins the thread; records a clean stop
    /// (the next start keeps the epoch) only if every message was kept.
    ~SqliteHistory() override;

    Start start(std::size_t newest) override;
    /// Counts against the reads' bound; over it, answered `failed`.
    void open_room(const std::string& room, std::size_t newest, RoomReply reply) override;
    void vacate(const std::string& room) override;
    bool try_append(const std::string& room, std::uint64_t id, const hub::Frame& message) override;
    void read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                     Reply reply) override;
    void stopped(bool all_handed_over) override;

  private:
    struct Read {
        std::string room;
        std::uint64_t before;
        std::size_t limit;
        Reply reply;
    };
    struct Open {
        std::string room;
        std::size_t newest;
        RoomReply reply;
    };
    struct Vacate {
        std::string room;
    };
    using Task = std::variant<Store::RoomMessage, Read, Open, Vacate>;

    void run();
    bool wakes_now() const;  // under the lock
    /// Queues a read or an open within the reads' bound; false when over it.
    bool try_read(Task task);
    void write(std::vector<Store::RoomMessage>& batch);
    // On the thread, in the order of the tasks:
    void answer(Read& read);
    void answer(Open& open);
    void answer(const Vacate& vacate);
    /// The rooms besides the lobby, counted, for /metrics.
    void count_rooms(std::size_t rooms);

    Store store_;  // the thread's alone once it runs
    metrics::Metrics& metrics_;
    const std::size_t max_rooms_;
    // The thread's: how many rooms exist besides the lobby, and the last id
    // of each room in a batch that could not be written (given out all the
    // same: a room opened again counts on from it).
    std::size_t rooms_ = 0;
    std::unordered_map<std::string, std::uint64_t> unwritten_;
    const std::size_t capacity_;       // appends queued
    const std::size_t read_capacity_;  // reads queued or being answered
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Task> tasks_;
    std::size_t appends_queued_ = 0;  // in tasks_
    std::size_t reads_ = 0;           // in tasks_ or being answered
    bool stopping_ = false;
    bool all_handed_over_ = true;  // the hub's word, once it has stopped
    bool lost_ = false;            // a batch was given up (the thread's, then the destructor's)
    bool idle_ = false;            // the thread waits for a first task
    std::jthread thread_;          // started in the constructor, once the rest exists
};

}  // namespace chat::history
