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
      capacity_(queue_capacity),
      read_capacity_(read_capacity),
      thread_([this] { run(); }) {
    CHAT_LOG(info) << "history: " << config.db.string() << ", epoch " << store_.epoch()
                   << ", last message " << store_.last_id()
                   << (store_.clean_start() ? ""
                                            : " (the last run did not stop cleanly: new epoch)");
}

SqliteHistory::~SqliteHistory() {
    std::uint64_t broadcast = 0;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        broadcast = last_broadcast_;
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
    if (store_.last_id() < broadcast) {
        CHAT_LOG(warning) << "history: messages " << store_.last_id() + 1 << " to " << broadcast
                          << " were broadcast but not kept: the next start takes a new epoch";
        return;
    }
    try {
        store_.mark_clean_stop();
        CHAT_LOG(info) << "history: written out, last message " << store_.last_id();
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

bool SqliteHistory::try_append(std::uint64_t id, const hub::Frame& message) {
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (appends_queued_ >= capacity_) {
            return false;
        }
        tasks_.emplace_back(Append{id, message});
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

void SqliteHistory::read_before(std::uint64_t before, std::size_t limit, Reply reply) {
    {
        std::unique_lock lock(mutex_);
        // A bound of their own: however many clients ask, the hub's appends
        // still find room.
        if (reads_ >= read_capacity_) {
            lock.unlock();
            reply(std::nullopt);
            return;
        }
        tasks_.emplace_back(Read{before, limit, std::move(reply)});
        ++reads_;
        if (!wakes_now()) {
            return;
        }
    }
    wake_.notify_one();
}

void SqliteHistory::stopped(std::uint64_t last_broadcast_id) {
    std::lock_guard lock(mutex_);
    last_broadcast_ = std::max(last_broadcast_, last_broadcast_id);
}

void SqliteHistory::write(std::vector<std::pair<std::uint64_t, hub::Frame>>& batch) {
    if (batch.empty()) {
        return;
    }
    const auto started = std::chrono::steady_clock::now();
    // A failure here (disk full, I/O error, SQLITE_BUSY) is the server's:
    // logged, and the batch is given up rather than retried forever; the
    // messages were delivered already. The store stays usable for the next.
    try {
        store_.append(batch);
        metrics_.add(metrics_.messages_stored, batch.size());
    } catch (const SQLite::Exception& error) {
        lost_ = true;
        CHAT_LOG(error) << "history: cannot write messages " << batch.front().first << " to "
                        << batch.back().first << " in " << store_.path().string() << ": "
                        << error.what() << "; they are not kept: the next start takes a new epoch";
    }
    const auto took = std::chrono::steady_clock::now() - started;
    metrics_.add(metrics_.store_batches);
    metrics_.add(metrics_.store_batch_microseconds,
                 static_cast<std::uint64_t>(
                     std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
    metrics_.add(metrics_.store_queue_depth, -static_cast<std::int64_t>(batch.size()));
    batch.clear();
}

void SqliteHistory::run() {
    std::deque<Task> taken;
    std::vector<std::pair<std::uint64_t, hub::Frame>> batch;
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
            // much more (the contract allows the last 100 ms).
            wake_.wait_for(lock, gather_time,
                           [this] { return stopping_ || tasks_.size() >= gather_count; });
            taken.swap(tasks_);
            appends_queued_ = 0;
        }
        // Everything that gathered meanwhile, in order: appends in one
        // transaction, which a read waits for so that it sees them.
        for (auto& task : taken) {
            if (auto* append = std::get_if<Append>(&task)) {
                batch.emplace_back(append->id, std::move(append->message));
                continue;
            }
            write(batch);
            auto& read = std::get<Read>(task);
            std::optional<std::vector<hub::Frame>> found;
            try {
                found = store_.before(read.before, read.limit);
            } catch (const SQLite::Exception& error) {
                CHAT_LOG(error) << "history: cannot read messages below " << read.before << ": "
                                << error.what();
            }
            read.reply(std::move(found));
            std::lock_guard lock(mutex_);
            --reads_;
        }
        write(batch);
        taken.clear();
    }
}

}  // namespace chat::history
