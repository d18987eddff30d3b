#include "chat/history/store.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include <SQLiteCpp/SQLiteCpp.h>

#include "chat/history/memory_history.hpp"
#include "chat/history/open.hpp"

namespace chat::history {

namespace fs = std::filesystem;

namespace {
/// Step N takes a file of schema version N to N + 1. A file of version 0 is
/// empty (a new file). Later versions add steps; none is ever edited.
constexpr std::array<std::string_view, Store::schema_version> migrations{
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, frame BLOB NOT NULL);",
};

/// Resets a statement whatever happens. A step that failed (disk full, an
/// I/O error, SQLITE_BUSY, a constraint) leaves it halted, and a halted
/// statement refuses every later bind ("bad parameter or other API misuse"):
/// without the reset, one failure would fail every later use of it. tryReset,
/// not reset: after a failed step reset() throws that failure again.
class ResetOnExit {
  public:
    explicit ResetOnExit(SQLite::Statement& statement) noexcept : statement_(statement) {}
    ~ResetOnExit() { statement_.tryReset(); }
    ResetOnExit(const ResetOnExit&) = delete;
    ResetOnExit& operator=(const ResetOnExit&) = delete;

  private:
    SQLite::Statement& statement_;
};
}  // namespace

Store::Store(const fs::path& path, std::size_t keep) : path_(path), keep_(keep) {
    try {
        if (path.has_parent_path()) {
            std::error_code ec;
            fs::create_directories(path.parent_path(), ec);
            if (ec) {
                fail("cannot create its folder: " + ec.message());
            }
        }
        db_ = std::make_unique<SQLite::Database>(path.string(),
                                                 SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        db_->setBusyTimeout(5000);
        // Reading the schema first tells a file that is not a database.
        const int version = db_->execAndGet("PRAGMA user_version").getInt();
        if (version > schema_version) {
            fail("schema version " + std::to_string(version) + ", newer than this server's (" +
                 std::to_string(schema_version) + ")");
        }
        db_->exec("PRAGMA journal_mode=WAL");
        // Debian builds SQLite with FULL as the default: every commit would
        // wait for the disk. NORMAL in WAL mode loses at most the last commits
        // in a power cut and never corrupts the file.
        db_->exec("PRAGMA synchronous=NORMAL");
        migrate(version);

        epoch_ = meta("epoch");
        const auto stopped = meta("clean_stop");
        clean_start_ = version == 0 || stopped == "1";
        // In use: a crash from here on changes the epoch. Unlike a batch of
        // messages, this commit waits for the disk: with NORMAL a power cut
        // can lose the last commits, and losing this one would leave the
        // last run's clean stop, so that ids handed out from here could come
        // again under the same epoch (rule 12).
        db_->exec("PRAGMA synchronous=FULL");
        SQLite::Transaction in_use(*db_);
        if (epoch_.empty() || !clean_start_) {
            epoch_ = hub::new_epoch();
            set_meta("epoch", epoch_);
        }
        set_meta("clean_stop", "0");
        in_use.commit();
        db_->exec("PRAGMA synchronous=NORMAL");
        last_id_ = static_cast<std::uint64_t>(
            db_->execAndGet("SELECT coalesce(max(id), 0) FROM messages").getInt64());

        insert_ = std::make_unique<SQLite::Statement>(
            *db_, "INSERT INTO messages (id, frame) VALUES (?, ?)");
        prune_ = std::make_unique<SQLite::Statement>(*db_, "DELETE FROM messages WHERE id <= ?");
        before_ = std::make_unique<SQLite::Statement>(
            *db_, "SELECT frame FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?");
    } catch (const SQLite::Exception& error) {
        fail(error.what());
    }
}

Store::~Store() = default;

void Store::fail(const std::string& what) const {
    throw OpenError("history database " + path_.string() + ": " + what);
}

void Store::migrate(int from) {
    if (from == schema_version) {
        return;
    }
    // Every step and the new version in one transaction: a step that fails
    // (or a crash) leaves the file as it was, at the version it had.
    SQLite::Transaction transaction(*db_);
    for (int version = from; version < schema_version; ++version) {
        db_->exec(std::string(migrations[static_cast<std::size_t>(version)]));
    }
    // A pragma takes no bound parameter; the number is the code's own.
    db_->exec("PRAGMA user_version = " + std::to_string(schema_version));
    transaction.commit();
}

std::string Store::meta(const std::string& key) {
    SQLite::Statement query(*db_, "SELECT value FROM meta WHERE key = ?");
    query.bind(1, key);
    return query.executeStep() ? query.getColumn(0).getString() : std::string();
}

void Store::set_meta(const std::string& key, const std::string& value) {
    SQLite::Statement update(*db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    update.bind(1, key);
    update.bind(2, value);
    update.exec();
}

void Store::append(std::span<const std::pair<std::uint64_t, hub::Frame>> messages) {
    if (messages.empty()) {
        return;
    }
    // On a failure the transaction rolls back (its destructor), after the
    // statements are reset (theirs, declared later): nothing of the batch is
    // kept, and last_id_ still names the last message that is.
    SQLite::Transaction transaction(*db_);
    const ResetOnExit insert_reset(*insert_);
    const ResetOnExit prune_reset(*prune_);
    for (const auto& [id, frame] : messages) {
        insert_->bind(1, static_cast<std::int64_t>(id));
        insert_->bind(2, frame->data(), static_cast<int>(frame->size()));
        insert_->exec();
        insert_->reset();
    }
    const auto last = messages.back().first;
    if (last > keep_) {
        prune_->bind(1, static_cast<std::int64_t>(last - keep_));
        prune_->exec();
    }
    transaction.commit();
    last_id_ = last;
}

std::vector<hub::Frame> Store::before(std::uint64_t before, std::size_t limit) {
    std::vector<hub::Frame> found;
    const ResetOnExit reset(*before_);  // a read that fails mid-way too
    before_->bind(1, static_cast<std::int64_t>(std::min<std::uint64_t>(before, INT64_MAX)));
    before_->bind(2, static_cast<std::int64_t>(limit));
    while (before_->executeStep()) {
        const auto column = before_->getColumn(0);
        found.push_back(
            std::make_shared<const std::string>(static_cast<const char*>(column.getBlob()),
                                                static_cast<std::size_t>(column.getBytes())));
    }
    std::reverse(found.begin(), found.end());  // oldest first
    return found;
}

std::vector<hub::Frame> Store::newest(std::size_t limit) {
    // The start's read, before the server takes anyone: a damaged page that
    // opening did not meet (it reads only the newest) is a file that cannot
    // be used, as a damaged header is.
    try {
        return before(last_id_ + 1, limit);
    } catch (const SQLite::Exception& error) {
        fail(error.what());
    }
}

void Store::mark_clean_stop() {
    set_meta("clean_stop", "1");
}

}  // namespace chat::history
