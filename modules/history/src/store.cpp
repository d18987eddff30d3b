#include "chat/history/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include <SQLiteCpp/SQLiteCpp.h>

#include "chat/history/memory_history.hpp"
#include "chat/history/open.hpp"
#include "chat/logging/log.hpp"

namespace chat::history {

namespace fs = std::filesystem;

namespace {
/// Step N takes a file of schema version N to N + 1. A file of version 0 is
/// empty (a new file). Later versions add steps; none is ever edited. All the
/// steps a file needs run in one transaction (Store::migrate).
constexpr std::array<std::string_view, Store::schema_version> migrations{
    // 0 -> 1: the lobby's messages by id.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, frame BLOB NOT NULL);",
    // 1 -> 2: rooms (contract version 3). Each room numbers its own messages,
    // so they are keyed by (room, id); the messages there were are the
    // lobby's, the room named "" with key 0, with their ids. `active` is the
    // room's last message (or creation) in ms since 1970, indexed so that the
    // quietest room is found without reading them all. Messages stay in a
    // rowid table (a large frame would bloat a WITHOUT ROWID one) under an
    // index on (room, id); no foreign key, whose check would cost a look-up
    // per message: append() creates a message's room in its transaction,
    // forget() deletes a room's messages in its own. The table is rebuilt
    // the way SQLite documents for a change of primary key: a new one, a
    // copy, the old one dropped, the new one renamed.
    "CREATE TABLE rooms (key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " active INTEGER NOT NULL);"
    "CREATE INDEX rooms_by_activity ON rooms (active);"
    "INSERT INTO rooms (key, name, active) VALUES (0, '', 0);"
    "CREATE TABLE messages_v2 ("
    " room INTEGER NOT NULL, id INTEGER NOT NULL, frame BLOB NOT NULL,"
    " PRIMARY KEY (room, id));"
    "INSERT INTO messages_v2 (room, id, frame) SELECT 0, id, frame FROM messages ORDER BY id;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v2 RENAME TO messages;",
    // 2 -> 3: a room's `base`, the count it goes on from when it has no
    // message above it; `occupied`, whether the hub holds it (it has users),
    // indexed with `active` so that the quietest room without users is one
    // index search; and the last id of each room forgotten in this epoch
    // (the oldest, by rowid, folded into meta's `floor` past a bound), so
    // that a room made again under its name counts on and no id names two
    // messages within one epoch (rule 12).
    "ALTER TABLE rooms ADD COLUMN base INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rooms ADD COLUMN occupied INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX rooms_by_activity;"
    "CREATE INDEX rooms_by_quiet ON rooms (occupied, active);"
    "CREATE TABLE forgotten (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL);",
};

/// The lobby's key in the rooms table (the room named "").
constexpr std::int64_t lobby_key = 0;

/// What SQLite keeps of a time: ms since 1970.
std::int64_t to_ms(Store::Clock::time_point at) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

Store::Clock::time_point from_ms(std::int64_t ms) {
    return Store::Clock::time_point(
        std::chrono::duration_cast<Store::Clock::duration>(std::chrono::milliseconds(ms)));
}

/// SQLite's integers are signed: ids past INT64_MAX mean "all of them".
std::int64_t to_sql(std::uint64_t id) {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(id, INT64_MAX));
}

/// Binds a room name as TEXT (a BLOB would never equal the TEXT kept).
void bind_name(SQLite::Statement& statement, int index, std::string_view room) {
    statement.bind(index, std::string(room));
}

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

Store::Store(const fs::path& path, std::size_t keep, std::size_t forgotten_limit)
    : path_(path), keep_(keep), forgotten_limit_(forgotten_limit) {
    try {
        if (path.has_parent_path()) {
            std::error_code ec;
            fs::create_directories(path.parent_path(), ec);
            if (ec) {
                fail("cannot create its folder: " + ec.message());
            }
        }
        // Locked before SQLite opens it (a lock of its own kind: SQLite's
        // are fcntl()'s, which flock() does not meet on Linux), and the
        // descriptor stays open until after the database closes, so that
        // closing it cannot drop SQLite's locks.
        lock_.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lock_.fd < 0) {
            fail("cannot open it: " + std::error_code(errno, std::system_category()).message());
        }
        if (::flock(lock_.fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) {
                fail("in use by another process (another chat_app with this --history-db?)");
            }
            fail("cannot lock it: " + std::error_code(errno, std::system_category()).message());
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
        if (version == 1) {
            CHAT_LOG(info) << "history: " << path.string() << " upgraded from schema version 1 to "
                           << schema_version << ": its messages are the lobby's";
        }

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
            // Ids count afresh under the new epoch: the old ones name nothing.
            db_->exec("DELETE FROM forgotten");
            set_meta("floor", "0");
        }
        // Nobody is in a room yet.
        db_->exec("UPDATE rooms SET occupied = 0 WHERE occupied != 0");
        set_meta("clean_stop", "0");
        // A room exists while it has users or kept messages (rule 17), and no
        // one is in a room yet: a room the last run created for its users
        // and never wrote a message in is gone (its count, if it went on
        // from an earlier one's, is remembered). An index look-up per room.
        db_->exec(
            "INSERT INTO forgotten (name, last_id) SELECT name, base FROM rooms "
            "WHERE key != 0 AND base > 0 AND NOT EXISTS "
            "(SELECT 1 FROM messages WHERE messages.room = rooms.key) "
            "ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)");
        db_->exec(
            "DELETE FROM rooms WHERE key != 0 AND NOT EXISTS "
            "(SELECT 1 FROM messages WHERE messages.room = rooms.key)");
        // Not "0" + text: g++ 12 warns about that concatenation (-Wrestrict).
        const auto floor = meta("floor");
        floor_ = floor.empty() ? 0 : static_cast<std::uint64_t>(std::stoull(floor));
        forgotten_ =
            static_cast<std::size_t>(db_->execAndGet("SELECT count(*) FROM forgotten").getInt64());
        in_use.commit();
        db_->exec("PRAGMA synchronous=NORMAL");

        find_key_ =
            std::make_unique<SQLite::Statement>(*db_, "SELECT key FROM rooms WHERE name = ?");
        add_room_ = std::make_unique<SQLite::Statement>(
            *db_, "INSERT INTO rooms (name, active) VALUES (?, ?)");
        insert_ = std::make_unique<SQLite::Statement>(
            *db_, "INSERT INTO messages (room, id, frame) VALUES (?, ?, ?)");
        prune_ = std::make_unique<SQLite::Statement>(
            *db_, "DELETE FROM messages WHERE room = ? AND id <= ?");
        touch_ =
            std::make_unique<SQLite::Statement>(*db_, "UPDATE rooms SET active = ? WHERE key = ?");
        // The room by name, then its messages by (room, id): two index
        // searches, whatever the number of rooms and messages.
        before_ = std::make_unique<SQLite::Statement>(
            *db_,
            "SELECT frame FROM messages WHERE room = (SELECT key FROM rooms WHERE name = ?) "
            "AND id < ? ORDER BY id DESC LIMIT ?");
        // The lobby's last id: an index search too, which meets no damaged
        // page in the middle of the file (the start's read may: newest()).
        const auto lobby = find("");
        if (!lobby) {
            fail("it has no lobby (the room named \"\")");
        }
        last_id_ = lobby->last_id;
    } catch (const SQLite::Exception& error) {
        fail(error.what());
    }
}

Store::~Store() = default;

Store::FileLock::~FileLock() {
    if (fd >= 0) {
        ::close(fd);  // and with it the lock
    }
}

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

std::int64_t Store::room_key(std::string_view room, std::int64_t created_at) {
    {
        const ResetOnExit reset(*find_key_);
        bind_name(*find_key_, 1, room);
        if (find_key_->executeStep()) {
            return find_key_->getColumn(0).getInt64();
        }
    }
    const ResetOnExit reset(*add_room_);
    bind_name(*add_room_, 1, room);
    add_room_->bind(2, created_at);
    add_room_->exec();
    return db_->getLastInsertRowid();
}

void Store::append(std::span<const RoomMessage> messages, Clock::time_point at) {
    if (messages.empty()) {
        return;
    }
    const auto now = to_ms(at);
    // The rooms of this batch: their keys, and their last ids to prune
    // below. As many as the batch has rooms, gone with the call.
    struct Written {
        std::int64_t key;
        std::uint64_t last_id;
    };
    std::unordered_map<std::string_view, Written> rooms;
    // On a failure the transaction rolls back (its destructor), after the
    // statements are reset (theirs, declared later): nothing of the batch is
    // kept, no room of it is created, and last_id_ still names the lobby's
    // last message that is.
    SQLite::Transaction transaction(*db_);
    const ResetOnExit insert_reset(*insert_);
    const ResetOnExit prune_reset(*prune_);
    const ResetOnExit touch_reset(*touch_);
    Written* room = nullptr;
    std::string_view room_name;
    for (const auto& message : messages) {
        if (room == nullptr || message.room != room_name) {
            room_name = message.room;
            auto found = rooms.find(room_name);
            if (found == rooms.end()) {
                found = rooms.emplace(room_name, Written{room_key(room_name, now), 0}).first;
            }
            room = &found->second;
        }
        insert_->bind(1, room->key);
        insert_->bind(2, static_cast<std::int64_t>(message.id));
        insert_->bind(3, message.message->data(), static_cast<int>(message.message->size()));
        insert_->exec();
        insert_->reset();
        room->last_id = message.id;
    }
    for (const auto& [name, written] : rooms) {
        if (written.last_id > keep_) {
            prune_->bind(1, written.key);
            prune_->bind(2, static_cast<std::int64_t>(written.last_id - keep_));
            prune_->exec();
            prune_->reset();
        }
        touch_->bind(1, now);
        touch_->bind(2, written.key);
        touch_->exec();
        touch_->reset();
    }
    transaction.commit();
    if (const auto lobby = rooms.find(""); lobby != rooms.end()) {
        last_id_ = lobby->second.last_id;
    }
}

void Store::append(std::string_view room,
                   std::span<const std::pair<std::uint64_t, hub::Frame>> messages,
                   Clock::time_point at) {
    std::vector<RoomMessage> in_room;
    in_room.reserve(messages.size());
    for (const auto& [id, frame] : messages) {
        in_room.push_back({std::string(room), id, frame});
    }
    append(in_room, at);
}

void Store::append(std::span<const std::pair<std::uint64_t, hub::Frame>> messages) {
    append("", messages);
}

std::vector<hub::Frame> Store::before(std::string_view room, std::uint64_t before,
                                      std::size_t limit) {
    std::vector<hub::Frame> found;
    const ResetOnExit reset(*before_);  // a read that fails mid-way too
    bind_name(*before_, 1, room);
    before_->bind(2, to_sql(before));
    before_->bind(3, to_sql(limit));
    while (before_->executeStep()) {
        const auto column = before_->getColumn(0);
        found.push_back(
            std::make_shared<const std::string>(static_cast<const char*>(column.getBlob()),
                                                static_cast<std::size_t>(column.getBytes())));
    }
    std::reverse(found.begin(), found.end());  // oldest first
    return found;
}

std::vector<hub::Frame> Store::before(std::uint64_t before, std::size_t limit) {
    return this->before("", before, limit);
}

std::vector<hub::Frame> Store::newest(std::string_view room, std::size_t limit) {
    return before(room, UINT64_MAX, limit);
}

std::vector<hub::Frame> Store::newest(std::size_t limit) {
    // The start's read, before the server takes anyone: a damaged page that
    // opening did not meet (it reads only the newest) is a file that cannot
    // be used, as a damaged header is.
    try {
        return newest("", limit);
    } catch (const SQLite::Exception& error) {
        fail(error.what());
    }
}

std::optional<Store::Room> Store::find(std::string_view room) {
    // Its newest message is the last of its (room, id) index: one search;
    // without one above its base, the base is its last id.
    SQLite::Statement query(*db_,
                            "SELECT active, base, (SELECT max(id) FROM messages "
                            "WHERE messages.room = rooms.key) FROM rooms WHERE name = ?");
    bind_name(query, 1, room);
    if (!query.executeStep()) {
        return std::nullopt;
    }
    const auto base = static_cast<std::uint64_t>(query.getColumn(1).getInt64());
    const bool keeps = !query.getColumn(2).isNull();
    const auto newest = keeps ? static_cast<std::uint64_t>(query.getColumn(2).getInt64()) : 0;
    return Room{std::max(base, newest), from_ms(query.getColumn(0).getInt64()), keeps};
}

bool Store::create(std::string_view room, Clock::time_point at, bool occupied) {
    SQLite::Transaction transaction(*db_);
    // It counts on from a room of its name forgotten earlier in this epoch,
    // and from every one whose name is no longer remembered.
    auto base = floor_;
    SQLite::Statement earlier(*db_, "SELECT last_id FROM forgotten WHERE name = ?");
    bind_name(earlier, 1, room);
    if (earlier.executeStep()) {
        base = std::max(base, static_cast<std::uint64_t>(earlier.getColumn(0).getInt64()));
    }
    SQLite::Statement insert(*db_,
                             "INSERT INTO rooms (name, active, base, occupied) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (name) DO NOTHING");
    bind_name(insert, 1, room);
    insert.bind(2, to_ms(at));
    insert.bind(3, to_sql(base));
    insert.bind(4, occupied ? 1 : 0);
    if (insert.exec() != 1) {
        return false;
    }
    SQLite::Statement remembered(*db_, "DELETE FROM forgotten WHERE name = ?");
    bind_name(remembered, 1, room);
    forgotten_ -= static_cast<std::size_t>(remembered.exec());
    transaction.commit();
    return true;
}

void Store::set_occupied(std::string_view room, bool occupied) {
    SQLite::Statement update(*db_, "UPDATE rooms SET occupied = ? WHERE name = ?");
    update.bind(1, occupied ? 1 : 0);
    bind_name(update, 2, room);
    update.exec();
}

bool Store::forget(std::string_view room) {
    SQLite::Transaction transaction(*db_);  // its messages go with it
    std::int64_t key = lobby_key;
    {
        const ResetOnExit reset(*find_key_);
        bind_name(*find_key_, 1, room);
        if (!find_key_->executeStep()) {
            return false;
        }
        key = find_key_->getColumn(0).getInt64();
    }
    if (key == lobby_key) {
        return false;
    }
    // Its count outlives it (schema step 2 -> 3), within a bound.
    {
        SQLite::Statement known(*db_, "SELECT 1 FROM forgotten WHERE name = ?");
        bind_name(known, 1, room);
        const bool remembered = known.executeStep();
        SQLite::Statement last(
            *db_,
            "INSERT INTO forgotten (name, last_id) SELECT name, max(base, coalesce((SELECT "
            "max(id) FROM messages WHERE messages.room = rooms.key), 0)) FROM rooms WHERE key = ? "
            "AND (base > 0 OR EXISTS (SELECT 1 FROM messages WHERE messages.room = rooms.key)) "
            "ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)");
        last.bind(1, key);
        if (last.exec() == 1 && !remembered) {
            ++forgotten_;
        }
    }
    while (forgotten_ > forgotten_limit_) {
        // The oldest is folded into the floor every new room counts on from.
        SQLite::Statement oldest(*db_,
                                 "SELECT rowid, last_id FROM forgotten ORDER BY rowid LIMIT 1");
        if (!oldest.executeStep()) {
            break;
        }
        floor_ = std::max(floor_, static_cast<std::uint64_t>(oldest.getColumn(1).getInt64()));
        set_meta("floor", std::to_string(floor_));
        SQLite::Statement fold(*db_, "DELETE FROM forgotten WHERE rowid = ?");
        fold.bind(1, oldest.getColumn(0).getInt64());
        fold.exec();
        --forgotten_;
    }
    SQLite::Statement messages(*db_, "DELETE FROM messages WHERE room = ?");
    messages.bind(1, key);
    messages.exec();
    SQLite::Statement rooms(*db_, "DELETE FROM rooms WHERE key = ?");
    rooms.bind(1, key);
    rooms.exec();
    transaction.commit();
    return true;
}

std::size_t Store::room_count() {
    SQLite::Statement count(*db_, "SELECT count(*) FROM rooms WHERE key != ?");
    count.bind(1, lobby_key);
    count.executeStep();
    return static_cast<std::size_t>(count.getColumn(0).getInt64());
}

std::optional<std::string> Store::quietest() {
    // The first of rooms_by_quiet's entries without users, with no sort
    // (they end with the key, so equals come oldest room first): the lobby
    // at most is passed over.
    SQLite::Statement rooms(*db_,
                            "SELECT name FROM rooms WHERE occupied = 0 AND key != ? "
                            "ORDER BY active, key LIMIT 1");
    rooms.bind(1, lobby_key);
    if (rooms.executeStep()) {
        return rooms.getColumn(0).getString();
    }
    return std::nullopt;
}

void Store::mark_clean_stop() {
    set_meta("clean_stop", "1");
}

}  // namespace chat::history
