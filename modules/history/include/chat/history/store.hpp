#pragma once
// The history's SQLite file: one thread uses it (SqliteHistory's).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/hub/frame_queue.hpp"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace chat::history {

/// Messages by room and id, as the serialised frames that were broadcast,
/// and the history's epoch. Each room numbers its own messages and keeps its
/// newest `keep` (contract rule 17); the lobby is the room named "", which
/// always exists. One epoch names the history of every room. Opening it
/// starts a new epoch when the file is new or the last run did not stop
/// cleanly (ids handed out but not kept may be handed out again then: rule
/// 12); each room's count goes on from its last kept id.
/// WAL with synchronous=NORMAL: a commit does not wait for the disk, and a
/// crash loses at most the last commits, never the file. The one commit that
/// waits is the mark that the file is in use, made on opening.
/// Nothing per room is held in memory: a call reads what it answers, looking
/// the room up by name through an index.
class Store {
  public:
    using Clock = std::chrono::system_clock;

    /// The schema this server writes; older files are upgraded on opening.
    static constexpr int schema_version = 3;

    /// A message to keep, in its room.
    struct RoomMessage {
        std::string room;  // "" is the lobby
        std::uint64_t id;  // in that room
        hub::Frame message;
    };

    /// A room as the file keeps it.
    struct Room {
        std::uint64_t last_id = 0;  // its count goes on after it: its newest message's id, or
                                    // that of a room of its name forgotten before; 0: none
        Clock::time_point active;   // its last message, or its creation (to the ms)
        bool keeps_messages = false;
    };

    /// Opens or creates `path` and its folder, upgrades an older schema (a
    /// file of version 1 has no rooms: its messages become the lobby's, with
    /// their ids and epoch), forgets the rooms that have no kept messages (no
    /// one is in a room at a start: such a room no longer exists), and marks
    /// the file as in use. Throws OpenError naming the file if it is
    /// unwritable, not a database, of a newer schema version, or in use by
    /// another process.
    /// At most `forgotten_limit` forgotten rooms' counts are remembered by
    /// name; older ones are folded into one floor that every new room counts
    /// on from.
    Store(const std::filesystem::path& path, std::size_t keep,
          std::size_t forgotten_limit = 100'000);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    const std::string& epoch() const noexcept { return epoch_; }
    /// The lobby's last kept id.
    std::uint64_t last_id() const noexcept { return last_id_; }
    /// The file was new, or its last run stopped cleanly.
    bool clean_start() const noexcept { return clean_start_; }

    /// Writes the messages in one transaction, creating the rooms that do not
    /// exist yet, then prunes all but the newest `keep` of each room they are
    /// in and records `at` as those rooms' last activity. Within a room, ids
    /// are consecutive and rising; rooms may interleave. Throws
    /// SQLite::Exception when that fails: then none of them is kept (and no
    /// room is created), last_id() stays, and later calls work.
    void append(std::span<const RoomMessage> messages, Clock::time_point at = Clock::now());
    /// The same for messages of one room.
    void append(std::string_view room,
                std::span<const std::pair<std::uint64_t, hub::Frame>> messages,
                Clock::time_point at = Clock::now());
    /// The same for the lobby.
    void append(std::span<const std::pair<std::uint64_t, hub::Frame>> messages);

    /// The newest messages of `room` with ids below `before`, at most
    /// `limit`, oldest first; none for a room that does not exist.
    std::vector<hub::Frame> before(std::string_view room, std::uint64_t before, std::size_t limit);
    /// The same in the lobby.
    std::vector<hub::Frame> before(std::uint64_t before, std::size_t limit);
    /// The newest `limit` messages of `room`, oldest first (a join's read).
    std::vector<hub::Frame> newest(std::string_view room, std::size_t limit);
    /// The newest `limit` messages of the lobby, oldest first: the start's
    /// read. Throws OpenError naming the file when it meets a damaged page.
    std::vector<hub::Frame> newest(std::size_t limit);

    /// The room named `room`, or nullopt when it does not exist.
    std::optional<Room> find(std::string_view room);
    /// Creates `room` (a join that finds it missing), active since `at`,
    /// counting on from a room of its name forgotten in this epoch; false
    /// when it exists already (it is left as it is).
    bool create(std::string_view room, Clock::time_point at = Clock::now(), bool occupied = false);
    /// Whether the hub holds `room` (it has users): such a room is never the
    /// quietest. No room is occupied after opening.
    void set_occupied(std::string_view room, bool occupied);
    /// Forgets `room` and its kept messages; false when it does not exist.
    /// The lobby is never forgotten (false). Its last id is remembered for
    /// the rest of the epoch: a room made again under its name counts on
    /// from it (find() says so), so that no id names two messages.
    bool forget(std::string_view room);
    /// How many rooms exist besides the lobby. Counts them: O(rooms).
    std::size_t room_count();
    /// Of the rooms besides the lobby that are not occupied, the one quiet
    /// the longest (the oldest activity; the oldest room among equals), or
    /// nullopt when there is none. One index search.
    std::optional<std::string> quietest();

    /// Records that everything is written: the next start keeps the epoch.
    void mark_clean_stop();

  private:
    void migrate(int from);
    std::string meta(const std::string& key);
    void set_meta(const std::string& key, const std::string& value);
    std::int64_t room_key(std::string_view room, std::int64_t created_at);
    [[noreturn]] void fail(const std::string& what) const;

    /// An exclusive flock() on the file for the store's life, so that a
    /// second chat_app started on it by mistake stops instead of marking the
    /// file in use under a new epoch and forgetting the running one's rooms.
    /// Declared before db_: released after the database is closed.
    struct FileLock {
        int fd = -1;
        FileLock() = default;
        FileLock(const FileLock&) = delete;
        FileLock& operator=(const FileLock&) = delete;
        ~FileLock();
    };

    std::filesystem::path path_;
    std::size_t keep_;
    FileLock lock_;
    std::unique_ptr<SQLite::Database> db_;
    // The statements every batch or read uses, prepared once.
    std::unique_ptr<SQLite::Statement> find_key_;
    std::unique_ptr<SQLite::Statement> add_room_;
    std::unique_ptr<SQLite::Statement> insert_;
    std::unique_ptr<SQLite::Statement> prune_;
    std::unique_ptr<SQLite::Statement> touch_;
    std::unique_ptr<SQLite::Statement> before_;
    std::string epoch_;
    std::uint64_t last_id_ = 0;  // the lobby's
    std::size_t forgotten_limit_;
    std::size_t forgotten_ = 0;  // rows of the forgotten table
    std::uint64_t floor_ = 0;    // the highest count folded out of it
    bool clean_start_ = true;
};

}  // namespace chat::history
