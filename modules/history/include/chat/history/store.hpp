#pragma once
// The history's SQLite file: one thread uses it (SqliteHistory's).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chat/hub/frame_queue.hpp"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace chat::history {

/// Messages by id, as the serialised frames that were broadcast, and the
/// history's epoch. Opening it starts a new epoch when the file is new or
/// the last run did not stop cleanly (ids handed out but not kept may be
/// handed out again then: rule 12); the count goes on from the last kept id.
/// WAL with synchronous=NORMAL: a commit does not wait for the disk, and a
/// crash loses at most the last commits, never the file. The one commit that
/// waits is the mark that the file is in use, made on opening.
class Store {
  public:
    /// The schema this server writes; older files are upgraded on opening.
    static constexpr int schema_version = 1;

    /// Opens or creates `path` and its folder, and marks the file as in use.
    /// Throws OpenError naming the file if it is unwritable, not a database,
    /// or of a newer schema version.
    Store(const std::filesystem::path& path, std::size_t keep);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    const std::string& epoch() const noexcept { return epoch_; }
    std::uint64_t last_id() const noexcept { return last_id_; }
    /// The file was new, or its last run stopped cleanly.
    bool clean_start() const noexcept { return clean_start_; }

    /// Writes the messages (consecutive ids) in one transaction, then prunes
    /// all but the newest `keep`. Throws SQLite::Exception when that fails:
    /// then none of them is kept (last_id() stays), and later calls work.
    void append(std::span<const std::pair<std::uint64_t, hub::Frame>> messages);
    /// The newest messages with ids below `before`, at most `limit`, oldest first.
    std::vector<hub::Frame> before(std::uint64_t before, std::size_t limit);
    /// The newest `limit` messages, oldest first: the start's read. Throws
    /// OpenError naming the file when it meets a damaged page.
    std::vector<hub::Frame> newest(std::size_t limit);
    /// Records that everything is written: the next start keeps the epoch.
    void mark_clean_stop();

  private:
    void migrate(int from);
    std::string meta(const std::string& key);
    void set_meta(const std::string& key, const std::string& value);
    [[noreturn]] void fail(const std::string& what) const;

    std::filesystem::path path_;
    std::size_t keep_;
    std::unique_ptr<SQLite::Database> db_;
    std::unique_ptr<SQLite::Statement> insert_;
    std::unique_ptr<SQLite::Statement> prune_;
    std::unique_ptr<SQLite::Statement> before_;
    std::string epoch_;
    std::uint64_t last_id_ = 0;
    bool clean_start_ = true;
};

}  // namespace chat::history
