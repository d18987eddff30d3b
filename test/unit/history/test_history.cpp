// Kept history without a server: the SQLite store, the store thread, the
// in-memory store.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <future>

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include "chat/chat.pb.h"
#include "chat/history/memory_history.hpp"
#include "chat/history/open.hpp"
#include "chat/history/sqlite_history.hpp"
#include "chat/history/store.hpp"
#include "chat/hub/history.hpp"
#include "message_frames.hpp"
#include "test_server.hpp"

using namespace chat;
using history::Store;
using hub::Frame;
using test::ids;
using test::Ids;
using test::message;

namespace {

std::vector<std::pair<std::uint64_t, Frame>> messages(std::uint64_t first, std::uint64_t last) {
    std::vector<std::pair<std::uint64_t, Frame>> out;
    for (auto id = first; id <= last; ++id) {
        out.emplace_back(id, message(id));
    }
    return out;
}

struct Db {
    test::TempDir dir;
    std::filesystem::path path = dir.path() / "sub" / "chat.db";  // the folder is made
};

/// What a reply carries, waited for.
std::optional<std::vector<Frame>> read_before(hub::History& history, std::uint64_t before) {
    std::promise<std::optional<std::vector<Frame>>> answer;
    history.read_before("", before, 100, [&](auto frames) { answer.set_value(std::move(frames)); });
    return answer.get_future().get();
}

/// Holds a store's thread in the reply to a read, as a slow disk would, from
/// its construction until let_go() or its end. Declared after the store, it
/// lets go before the store joins its thread, however the test ends.
class HeldStoreThread {
  public:
    explicit HeldStoreThread(hub::History& store) {
        store.read_before("", 1, 100, [this, gate = go_.get_future().share()](auto /*frames*/) {
            answering_.set_value();
            gate.wait();
        });
        answering_.get_future().wait();
    }
    ~HeldStoreThread() { let_go(); }
    HeldStoreThread(const HeldStoreThread&) = delete;
    HeldStoreThread& operator=(const HeldStoreThread&) = delete;

    void let_go() {
        if (!std::exchange(gone_, true)) {
            go_.set_value();
        }
    }

  private:
    std::promise<void> go_;
    std::promise<void> answering_;
    bool gone_ = false;
};

/// Tells whether what was written to a WAL file has been synced since, while
/// it lives: a VFS over the default one, registered as the default meanwhile.
/// One at a time; the connections opened meanwhile are closed before it goes.
class WalSyncs {
  public:
    WalSyncs() {
        real_ = sqlite3_vfs_find(nullptr);
        vfs_ = *real_;
        vfs_.zName = "wal_syncs";
        vfs_.pNext = nullptr;
        vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
        vfs_.xOpen = &open;
        unsynced_ = false;
        BOOST_TEST_REQUIRE(sqlite3_vfs_register(&vfs_, 1) == SQLITE_OK);
    }
    ~WalSyncs() {
        sqlite3_vfs_unregister(&vfs_);
        sqlite3_vfs_register(real_, 1);  // the default again
    }
    WalSyncs(const WalSyncs&) = delete;
    WalSyncs& operator=(const WalSyncs&) = delete;

    /// Something was written to a WAL and not synced since.
    bool unsynced() const { return unsynced_.load(); }

  private:
    /// Ours, with the default VFS's file right behind it.
    struct File {
        sqlite3_file base;
        sqlite3_file* real;
        bool wal;
    };
    static sqlite3_file* real(sqlite3_file* file) { return reinterpret_cast<File*>(file)->real; }

    static int open(sqlite3_vfs* /*vfs*/, sqlite3_filename name, sqlite3_file* file, int flags,
                    int* out_flags) {
        auto* ours = reinterpret_cast<File*>(file);
        ours->real = reinterpret_cast<sqlite3_file*>(ours + 1);
        ours->wal = (flags & SQLITE_OPEN_WAL) != 0;
        const int result = real_->xOpen(real_, name, ours->real, flags, out_flags);
        // SQLite closes what has methods, even after a failed open.
        ours->base.pMethods = ours->real->pMethods != nullptr ? &methods : nullptr;
        return result;
    }

    static const sqlite3_io_methods methods;

    static inline sqlite3_vfs* real_ = nullptr;  // the default one, under ours
    static inline std::atomic<bool> unsynced_{false};
    sqlite3_vfs vfs_{};
};

// Every call goes to the default VFS's file; writes and syncs of a WAL are noted.
const sqlite3_io_methods WalSyncs::methods{
    3,
    [](sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); },
    [](sqlite3_file* f, void* data, int n, sqlite3_int64 at) {
        return real(f)->pMethods->xRead(real(f), data, n, at);
    },
    [](sqlite3_file* f, const void* data, int n, sqlite3_int64 at) {
        if (reinterpret_cast<File*>(f)->wal) {
            unsynced_ = true;
        }
        return real(f)->pMethods->xWrite(real(f), data, n, at);
    },
    [](sqlite3_file* f, sqlite3_int64 size) { return real(f)->pMethods->xTruncate(real(f), size); },
    [](sqlite3_file* f, int flags) {
        if (reinterpret_cast<File*>(f)->wal) {
            unsynced_ = false;
        }
        return real(f)->pMethods->xSync(real(f), flags);
    },
    [](sqlite3_file* f, sqlite3_int64* size) {
        return real(f)->pMethods->xFileSize(real(f), size);
    },
    [](sqlite3_file* f, int lock) { return real(f)->pMethods->xLock(real(f), lock); },
    [](sqlite3_file* f, int lock) { return real(f)->pMethods->xUnlock(real(f), lock); },
    [](sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); },
    [](sqlite3_file* f, int op, void* arg) {
        return real(f)->pMethods->xFileControl(real(f), op, arg);
    },
    [](sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); },
    [](sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); },
    [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
        return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
    },
    [](sqlite3_file* f, int offset, int n, int flags) {
        return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
    },
    [](sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); },
    [](sqlite3_file* f, int remove) { return real(f)->pMethods->xShmUnmap(real(f), remove); },
    [](sqlite3_file* f, sqlite3_int64 at, int n, void** out) {
        return real(f)->pMethods->xFetch(real(f), at, n, out);
    },
    [](sqlite3_file* f, sqlite3_int64 at, void* p) {
        return real(f)->pMethods->xUnfetch(real(f), at, p);
    },
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(history_store, Db)

BOOST_AUTO_TEST_CASE(appends_and_reads_ranges_oldest_first) {
    Store store(path, 1000);
    BOOST_TEST(store.last_id() == 0u);
    BOOST_TEST(store.clean_start());
    BOOST_TEST(store.epoch().size() == 16u);
    store.append(messages(1, 3));
    store.append(messages(4, 250));
    BOOST_TEST(store.last_id() == 250u);
    BOOST_TEST((ids(store.newest(3)) == Ids{248, 249, 250}));
    BOOST_TEST((ids(store.before(5, 100)) == Ids{1, 2, 3, 4}));
    const auto page = ids(store.before(200, 100));
    BOOST_TEST(page.front() == 100u);
    BOOST_TEST(page.back() == 199u);
    BOOST_TEST(store.before(1, 100).empty());
    // The bytes come back as they went in.
    BOOST_TEST(*store.newest(1).front() == *message(250));
}

BOOST_AUTO_TEST_CASE(prunes_all_but_the_newest_kept) {
    Store store(path, 5);
    store.append(messages(1, 12));
    BOOST_TEST((ids(store.before(100, 100)) == Ids{8, 9, 10, 11, 12}));
    BOOST_TEST(store.before(8, 100).empty());  // no longer kept
}

BOOST_AUTO_TEST_CASE(a_clean_stop_keeps_the_epoch_a_crash_changes_it_ids_go_on) {
    std::string first_epoch;
    {
        Store store(path, 1000);
        first_epoch = store.epoch();
        store.append(messages(1, 10));
        store.mark_clean_stop();
    }
    std::string second_epoch;
    {
        Store store(path, 1000);
        BOOST_TEST(store.clean_start());
        BOOST_TEST(store.epoch() == first_epoch);
        BOOST_TEST(store.last_id() == 10u);
        store.append(messages(11, 12));
        // No clean stop: as if killed.
    }
    Store store(path, 1000);
    BOOST_TEST(!store.clean_start());
    BOOST_TEST(store.epoch() != first_epoch);  // ids handed out but lost could come again
    BOOST_TEST(store.last_id() == 12u);        // the count goes on from the last kept
    BOOST_TEST((ids(store.newest(2)) == Ids{11, 12}));
}

BOOST_AUTO_TEST_CASE(a_failed_write_keeps_none_of_its_batch_and_the_next_ones_are_kept) {
    Store store(path, 5);
    store.append(messages(1, 5));
    // Failures injected from another connection: a trigger that aborts the
    // insert of id 7, then one that aborts the prune of old messages.
    SQLite::Database other(path.string(), SQLite::OPEN_READWRITE);
    other.exec(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON messages WHEN NEW.id = 7 "
        "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    BOOST_CHECK_THROW(store.append(messages(6, 8)), SQLite::Exception);
    BOOST_TEST(store.last_id() == 5u);
    other.exec("DROP TRIGGER fail_insert");
    store.append(messages(6, 8));  // the insert statement is usable again
    BOOST_TEST(store.last_id() == 8u);

    other.exec(
        "CREATE TRIGGER fail_prune BEFORE DELETE ON messages BEGIN "
        "SELECT RAISE(ABORT, 'injected'); END");
    BOOST_CHECK_THROW(store.append(messages(9, 10)), SQLite::Exception);  // fails at the prune
    BOOST_TEST(store.last_id() == 8u);  // rolled back: 9 and 10 are not kept
    other.exec("DROP TRIGGER fail_prune");
    store.append(messages(9, 10));  // and so is the prune statement
    BOOST_TEST(store.last_id() == 10u);
    BOOST_TEST((ids(store.newest(100)) == Ids{6, 7, 8, 9, 10}));
}

BOOST_AUTO_TEST_CASE(the_in_use_mark_is_on_the_disk_before_an_id_is_handed_out) {
    {
        Store store(path, 10);
        store.append(messages(1, 3));
        store.mark_clean_stop();
    }
    WalSyncs wal;
    Store store(path, 10);
    // Lost in a power cut, the mark would leave the last run's clean stop:
    // ids handed out from here would come again under the same epoch.
    BOOST_TEST(!wal.unsynced());
    store.append(messages(4, 6));
    BOOST_TEST(wal.unsynced());  // a batch does not wait for the disk
}

BOOST_AUTO_TEST_CASE(a_file_of_another_schema_version_is_refused_naming_it) {
    { Store store(path, 10); }
    {
        SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
        BOOST_TEST(db.execAndGet("PRAGMA user_version").getInt() == Store::schema_version);
        db.exec("PRAGMA user_version = 99");
    }
    try {
        Store store(path, 10);
        BOOST_FAIL("opened a file of schema version 99");
    } catch (const history::OpenError& error) {
        const std::string what = error.what();
        BOOST_TEST(what.find(path.string()) != std::string::npos, what);
        BOOST_TEST(what.find("schema version 99") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(a_corrupt_or_unusable_file_is_refused_naming_it) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << std::string(4096, 'x');  // not a database
    BOOST_CHECK_EXCEPTION(Store(path, 10), history::OpenError, [&](const auto& error) {
        return std::string(error.what()).find(path.string()) != std::string::npos;
    });
    // Its folder cannot be made: a file stands where it would be.
    const auto blocked = dir.path() / "file" / "chat.db";
    std::ofstream(dir.path() / "file") << "x";
    BOOST_CHECK_EXCEPTION(Store(blocked, 10), history::OpenError, [&](const auto& error) {
        return std::string(error.what()).find(blocked.string()) != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(damage_met_at_the_first_read_is_refused_naming_the_file) {
    test::write_damaged_history(path, 1000);
    const auto names_the_file = [&](const history::OpenError& error) {
        const std::string what = error.what();
        BOOST_TEST_MESSAGE(what);
        return what.find("history database " + path.string() + ": ") != std::string::npos;
    };
    {
        Store store(path, 1000);  // opening it meets no damaged page
        BOOST_TEST(store.last_id() == 1000u);
        // The start's read of the newest messages meets it.
        BOOST_CHECK_EXCEPTION(store.newest(1000), history::OpenError, names_the_file);
        // A later read that meets it fails alone: the next ones work.
        BOOST_CHECK_THROW(store.before(1001, 1000), SQLite::Exception);
        BOOST_TEST((ids(store.before(1001, 2)) == Ids{999, 1000}));
        BOOST_TEST((ids(store.before(3, 2)) == Ids{1, 2}));
    }
    metrics::Metrics counters;
    history::SqliteHistory kept({.db = path, .keep = 1000}, counters);
    BOOST_CHECK_EXCEPTION(kept.start(1000), history::OpenError, names_the_file);
}

BOOST_AUTO_TEST_CASE(the_store_thread_writes_reads_in_order_and_stops_cleanly) {
    metrics::Metrics counters;
    std::string epoch;
    {
        history::SqliteHistory kept({.db = path, .keep = 1000}, counters);
        const auto start = kept.start(10);
        BOOST_TEST(start.last_id == 0u);
        epoch = start.epoch;
        for (std::uint64_t id = 1; id <= 150; ++id) {
            BOOST_TEST_REQUIRE(kept.try_append("", id, message(id)));
        }
        // Read after the appends: it sees them all.
        const auto page = read_before(kept, 151);
        BOOST_TEST_REQUIRE(page.has_value());
        BOOST_TEST(page->size() == 100u);
        BOOST_TEST(ids(*page).front() == 51u);
    }  // writes out, records the clean stop
    BOOST_TEST(counters.messages_stored.load() == 150u);
    BOOST_TEST(counters.store_queue_depth.load() == 0);
    BOOST_TEST(counters.store_batches.load() >= 1u);
    history::SqliteHistory again({.db = path, .keep = 1000}, counters);
    const auto start = again.start(3);
    BOOST_TEST(start.epoch == epoch);
    BOOST_TEST(start.last_id == 150u);
    BOOST_TEST((ids(start.newest) == Ids{148, 149, 150}));
}

BOOST_AUTO_TEST_CASE(a_dropped_batch_means_a_new_epoch_and_later_batches_are_kept) {
    metrics::Metrics counters;
    std::string epoch;
    {
        history::SqliteHistory kept({.db = path, .keep = 1000}, counters);
        epoch = kept.start(0).epoch;
        SQLite::Database other(path.string(), SQLite::OPEN_READWRITE);
        other.exec(
            "CREATE TRIGGER fail_insert BEFORE INSERT ON messages WHEN NEW.id = 2 "
            "BEGIN SELECT RAISE(ABORT, 'injected'); END");
        for (std::uint64_t id = 1; id <= 3; ++id) {
            BOOST_TEST_REQUIRE(kept.try_append("", id, message(id)));
        }
        // A read is answered once the appends before it were written (or
        // given up): the batch holding 2 failed.
        BOOST_TEST_REQUIRE(read_before(kept, 4).has_value());
        other.exec("DROP TRIGGER fail_insert");
        for (std::uint64_t id = 4; id <= 6; ++id) {
            BOOST_TEST_REQUIRE(kept.try_append("", id, message(id)));
        }
        const auto page = read_before(kept, 7);
        BOOST_TEST_REQUIRE(page.has_value());
        const auto kept_ids = ids(*page);
        BOOST_TEST(std::count(kept_ids.begin(), kept_ids.end(), 2u) == 0);
        BOOST_TEST_REQUIRE(kept_ids.size() >= 3u);
        BOOST_TEST((Ids(kept_ids.end() - 3, kept_ids.end()) == Ids{4, 5, 6}));
    }  // a graceful stop, but message 2 was broadcast and never kept
    BOOST_TEST(counters.store_queue_depth.load() == 0);
    history::SqliteHistory again({.db = path, .keep = 1000}, counters);
    const auto start = again.start(1);
    BOOST_TEST(start.epoch != epoch);  // 2 could be handed out again
    BOOST_TEST(start.last_id == 6u);
}

BOOST_AUTO_TEST_CASE(ids_broadcast_but_never_handed_over_mean_a_new_epoch) {
    metrics::Metrics counters;
    std::string epoch;
    {
        history::SqliteHistory kept({.db = path, .keep = 1000}, counters);
        epoch = kept.start(0).epoch;
        for (std::uint64_t id = 1; id <= 3; ++id) {
            BOOST_TEST_REQUIRE(kept.try_append("", id, message(id)));
        }
        kept.stopped(true);  // the hub handed over every id it broadcast
    }
    {
        history::SqliteHistory kept({.db = path, .keep = 1000}, counters);
        BOOST_TEST(kept.start(0).epoch == epoch);
        BOOST_TEST_REQUIRE(kept.try_append("", 4, message(4)));
        // 5 and 6 were still waiting in the hub when the shutdown's grace
        // period ended.
        kept.stopped(false);
    }
    history::SqliteHistory again({.db = path, .keep = 1000}, counters);
    const auto start = again.start(0);
    BOOST_TEST(start.epoch != epoch);  // 5 and 6 could be handed out again
    BOOST_TEST(start.last_id == 4u);
}

BOOST_AUTO_TEST_CASE(a_full_queue_says_no_and_loses_nothing) {
    metrics::Metrics counters;
    history::SqliteHistory kept({.db = path, .keep = 100'000}, counters, 4);
    HeldStoreThread held(kept);  // nothing leaves the queue meanwhile
    for (std::uint64_t id = 1; id <= 4; ++id) {
        BOOST_TEST_REQUIRE(kept.try_append("", id, message(id)));
    }
    BOOST_TEST(!kept.try_append("", 5, message(5)));  // full: the hub keeps it and offers it again
    held.let_go();
    std::uint64_t next = 5;
    while (next <= 2000) {
        if (kept.try_append("", next, message(next))) {
            ++next;
        }  // else refused again while the thread writes: offered again
    }
    // A read is taken whatever the appends' queue holds (reads have a bound
    // of their own), and sees every append before it.
    const auto page = read_before(kept, 2001);
    BOOST_TEST_REQUIRE(page.has_value());
    BOOST_TEST(ids(*page).back() == 2000u);
}

BOOST_AUTO_TEST_CASE(reads_have_a_bound_of_their_own_and_never_fill_the_appends_queue) {
    // What the replies touch outlives the store thread (declared first).
    std::mutex mutex;
    std::vector<int> answered;
    std::atomic<bool> refused = false;
    metrics::Metrics counters;
    history::SqliteHistory kept({.db = path, .keep = 1000}, counters, 8);
    // The store thread answers a first read and stays in its reply until the
    // test lets it go: the reads that follow wait, as behind a slow disk.
    HeldStoreThread held(kept);
    // Clients flood history requests until one is refused (the hub then
    // answers "history unavailable: try again").
    int queued = 0;
    for (; !refused; ++queued) {
        BOOST_TEST_REQUIRE(queued < 100'000);
        kept.read_before("", 1, 100, [&, n = queued](auto frames) {
            if (!frames) {
                refused = true;
                return;
            }
            const std::lock_guard lock(mutex);
            answered.push_back(n);
        });
    }
    --queued;  // the last one was refused (at once, on this thread)
    BOOST_TEST_MESSAGE(queued << " reads queued behind the first");
    // The hub's appends still find room, as many as the queue holds.
    for (std::uint64_t id = 1; id <= 8; ++id) {
        BOOST_TEST_REQUIRE(kept.try_append("", id, message(id)));
    }
    BOOST_TEST(!kept.try_append("", 9, message(9)));
    held.let_go();
    // A read taken after them sees them all; the queued ones were answered
    // first, in the order they came.
    auto page = read_before(kept, 100);
    while (!page) {
        page = read_before(kept, 100);  // the bound was still reached
    }
    BOOST_TEST((ids(*page) == Ids{1, 2, 3, 4, 5, 6, 7, 8}));
    const std::lock_guard lock(mutex);
    BOOST_TEST_REQUIRE(answered.size() == static_cast<std::size_t>(queued));
    for (int n = 0; n < queued; ++n) {
        BOOST_TEST_REQUIRE(answered[static_cast<std::size_t>(n)] == n);
    }
}

BOOST_AUTO_TEST_CASE(memory_history_keeps_the_newest_with_a_fresh_epoch) {
    history::MemoryHistory kept({.db = {}, .keep = 5});
    history::MemoryHistory other({.db = {}, .keep = 5});
    BOOST_TEST(kept.start(3).epoch != other.start(3).epoch);
    BOOST_TEST(kept.start(3).last_id == 0u);
    for (std::uint64_t id = 1; id <= 8; ++id) {
        kept.try_append("", id, message(id));
    }
    BOOST_TEST(kept.start(3).last_id == 8u);
    BOOST_TEST((ids(kept.start(2).newest) == Ids{7, 8}));
    BOOST_TEST((ids(*read_before(kept, 8)) == Ids{4, 5, 6, 7}));
    BOOST_TEST(read_before(kept, 4)->empty());
}

BOOST_AUTO_TEST_CASE(open_picks_memory_for_an_empty_path) {
    metrics::Metrics counters;
    const auto memory = history::open({.db = "", .keep = 10}, counters);
    BOOST_TEST(dynamic_cast<history::MemoryHistory*>(memory.get()) != nullptr);
    BOOST_TEST(!std::filesystem::exists(path));
}

BOOST_AUTO_TEST_SUITE_END()
