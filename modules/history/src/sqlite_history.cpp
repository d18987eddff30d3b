#include "chat/history/sqlite_history.hpp"

#include <algorithm>
#include <chrono>

#include <SQLiteCpp/Exception.h>

#include "chat/logging/log.hpp"

namespace chat::history {

namespace {
constexpr std::chrono::milliseconds gather_time{5};
constexpr std::size_t gather_count = 512;  // or this many tasks, whichever comes first
}  // namespace

SqliteHistory::SqliteHistory(const Config& config, metrics::Metrics& metrics,
                             std::size_t queue_capacity, std::size_t read_capacity)
    : store_(config.db, config.keep),
      metrics_(metrics),
      max_rooms_(config.max_rooms),
      capacity_(queue_capacity),
      read_capacity_(read_capacity) {
    // Opening forgot the rooms without messages: what is left is counted once.
    count_rooms(store_.room_count());
    thread_ = std::jthread([this] { run(); });
    CHAT_LOG(info) << "history: " << config.db.string() << ", epoch " << store_.epoch()
                   << ", last message " << store_.last_id() << " in the lobby, " << rooms_
                   << " other rooms"
                   << (store_.clean_start() ? ""
                                            : " (the last run did not stop cleanly: new epoch)");
}

SqliteHistory::~SqliteHistory() {
    bool all_handed_over = true;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        all_handed_over = all_handed_over_;
    }
    wake_.notify_one();
    thread_.join();  // it writes what is queued first
    // Rule 12: ids handed out but never kept must not come again under this
    // epoch. Without the clean stop the next start takes a new one.
    if (lost_) {
        CHAT_LOG(warning) << "history: messages were lost (see above): the next start takes a "
                             "new epoch";
        return;
    }
    if (!all_handed_over) {
        CHAT_LOG(warning) << "history: messages were broadcast but not handed over to be kept: "
                             "the next start takes a new epoch";
        return;
    }
    try {
        store_.mark_clean_stop();
        CHAT_LOG(info) << "history: written out, last message " << store_.last_id()
                       << " in the lobby";
    } catch (const SQLite::Exception& error) {
        CHAT_LOG(error) << "history: cannot record the clean stop: " << error.what();
    }
}

hub::History::Start SqliteHistory::start(std::size_t newest) {
    // Before the hub runs, so before any task: the thread is idle and the
    // store consistent. Read under the lock all the same, as a task would be.
    std::lock_guard lock(mutex_);
    return {store_.epoch(), store_.last_id(), store_.newest(newest)};
}

bool SqliteHistory::try_append(const std::string& room, std::uint64_t id,
                               const hub::Frame& message) {
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (appends_queued_ >= capacity_) {
            return false;
        }
        tasks_.emplace_back(Store::RoomMessage{room, id, message});
        ++appends_queued_;
        wake = wakes_now();
    }
    metrics_.add(metrics_.store_queue_depth, 1);
    if (wake) {
        wake_.notify_one();
    }
    return true;
}

bool SqliteHistory::wakes_now() const {
    // Idle: start gathering. Gathering: only once the batch is full; a wake
    // per message would cost a context switch per message.
    return idle_ || tasks_.size() == gather_count;
}

bool SqliteHistory::try_read(Task task) {
    {
        std::lock_guard lock(mutex_);
        // A bound of their own: however many clients ask, the hub's appends
        // still find room.
        if (reads_ >= read_capacity_) {
            return false;
        }
        tasks_.push_back(std::move(task));
        ++reads_;
        if (!wakes_now()) {
            return true;
        }
    }
    wake_.notify_one();
    return true;
}

void SqliteHistory::read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                                Reply reply) {
    // A task that is refused is not moved from (try_read takes it by value,
    // but its reply is only moved into the queue).
    auto task = Task{Read{room, before, limit, reply}};
    if (!try_read(std::move(task))) {
        reply(std::nullopt);
    }
}

void SqliteHistory::open_room(const std::string& room, std::size_t newest, RoomReply reply) {
    if (!try_read(Task{Open{room, newest, reply}})) {
        reply(hub::RoomStart{});  // failed: the hub's joiners try again
    }
}

void SqliteHistory::vacate(const std::string& room) {
    {
        // Never refused: one per room the hub let go of, each after its open.
        std::lock_guard lock(mutex_);
        tasks_.emplace_back(Vacate{room});
        if (!wakes_now()) {
            return;
        }
    }
    wake_.notify_one();
}

void SqliteHistory::stopped(bool all_handed_over) {
    std::lock_guard lock(mutex_);
    all_handed_over_ = all_handed_over;  // the hub's latest word
}

void SqliteHistory::count_rooms(std::size_t rooms) {
    metrics_.add(metrics_.rooms_kept,
                 static_cast<std::int64_t>(rooms) - static_cast<std::int64_t>(rooms_));
    rooms_ = rooms;
}

void SqliteHistory::write(std::vector<Store::RoomMessage>& batch) {
    if (batch.empty()) {
        return;
    }
    const auto started = std::chrono::steady_clock::now();
    // A failure here (disk full, I/O error, SQLITE_BUSY) is the server's:
    // logged, and the batch is given up rather than retried forever; the
    // messages were delivered already. The store stays usable for the next.
    try {
        // Rooms it creates are ones the hub opened (counted then), or the lobby.
        store_.append(batch);
        metrics_.add(metrics_.messages_stored, batch.size());
    } catch (const SQLite::Exception& error) {
        lost_ = true;
        for (const auto& message : batch) {
            auto& last = unwritten_[message.room];
            last = std::max(last, message.id);
        }
        CHAT_LOG(error) << "history: cannot write " << batch.size() << " messages in "
                        << store_.path().string() << ": " << error.what()
                        << "; they are not kept: the next start takes a new epoch";
    }
    const auto took = std::chrono::steady_clock::now() - started;
    metrics_.add(metrics_.store_batches);
    metrics_.add(metrics_.store_batch_microseconds,
                 static_cast<std::uint64_t>(
                     std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
    metrics_.add(metrics_.store_queue_depth, -static_cast<std::int64_t>(batch.size()));
    batch.clear();
}

void SqliteHistory::answer(Read& read) {
    std::optional<std::vector<hub::Frame>> found;
    try {
        found = store_.before(read.room, read.before, read.limit);
    } catch (const SQLite::Exception& error) {
        CHAT_LOG(error) << "history: cannot read messages below " << read.before << ": "
                        << error.what();
    }
    read.reply(std::move(found));
}

void SqliteHistory::answer(Open& open) {
    using Outcome = hub::RoomStart::Outcome;
    hub::RoomStart start;
    try {
        if (const auto room = store_.find(open.room)) {
            store_.set_occupied(open.room, true);
            start = {Outcome::opened, room->last_id, store_.newest(open.room, open.newest), {}, 0};
        } else {
            // One more room: if there are as many as may be, the quietest
            // without users goes first, with its messages (rule 17).
            if (rooms_ >= max_rooms_) {
                const auto quietest = store_.quietest();
                if (!quietest) {
                    hub::RoomStart refused;
                    refused.outcome = Outcome::too_many;
                    open.reply(std::move(refused));
                    return;
                }
                store_.forget(*quietest);
                count_rooms(rooms_ - 1);
                CHAT_LOG(debug) << "history: " << max_rooms_
                                << " rooms exist: the quietest without users is forgotten";
            }
            store_.create(open.room, Store::Clock::now(), true);
            count_rooms(rooms_ + 1);
            start.outcome = Outcome::opened;
            // A room of its name forgotten earlier in this epoch left its count.
            start.last_id = store_.find(open.room)->last_id;
        }
        // Ids broadcast in a batch that could not be written were given out.
        if (const auto lost = unwritten_.find(open.room); lost != unwritten_.end()) {
            start.last_id = std::max(start.last_id, lost->second);
        }
    } catch (const SQLite::Exception& error) {
        CHAT_LOG(error) << "history: cannot open a room: " << error.what();
        start = {};
    }
    open.reply(std::move(start));
}

void SqliteHistory::answer(const Vacate& vacate) {
    try {
        store_.set_occupied(vacate.room, false);
        // A room exists while it has users or kept messages (rule 17).
        const auto room = store_.find(vacate.room);
        if (room && !room->keeps_messages && store_.forget(vacate.room)) {
            count_rooms(rooms_ - 1);
        }
    } catch (const SQLite::Exception& error) {
        // It stays, without users: the quietest may be forgotten later.
        CHAT_LOG(error) << "history: cannot forget an empty room: " << error.what();
    }
}

void SqliteHistory::run() {
    std::deque<Task> taken;
    std::vector<Store::RoomMessage> batch;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            idle_ = true;
            wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
            idle_ = false;
            if (tasks_.empty()) {
                return;  // stopping, and everything is written
            }
            // A transaction every few milliseconds rather than one per message:
            // a commit costs far more than a row. A crash loses at most this
            // much more (docs/protocol.md, rule 12: what was not yet written
            // may be lost, and the next start takes a new epoch).
            wake_.wait_for(lock, gather_time,
                           [this] { return stopping_ || tasks_.size() >= gather_count; });
            taken.swap(tasks_);
            appends_queued_ = 0;
        }
        // Everything that gathered meanwhile, in order: appends in one
        // transaction, which any other task waits for so that it sees them.
        for (auto& task : taken) {
            if (auto* append = std::get_if<Store::RoomMessage>(&task)) {
                batch.push_back(std::move(*append));
                continue;
            }
            write(batch);
            if (const auto* vacate = std::get_if<Vacate>(&task)) {
                answer(*vacate);
                continue;
            }
            if (auto* read = std::get_if<Read>(&task)) {
                answer(*read);
            } else {
                answer(std::get<Open>(task));
            }
            std::lock_guard lock(mutex_);
            --reads_;
        }
        write(batch);
        taken.clear();
    }
}

}  // namespace chat::history
