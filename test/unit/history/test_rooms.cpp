// Rooms in the SQLite store (contract rule 17): each room numbers and keeps
// its own messages, pages are per room, a room is forgotten with its
// messages, the quietest room without users is found; and the upgrade of a
// file written before rooms (schema version 1).
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>

#include <SQLiteCpp/SQLiteCpp.h>

#include "chat/chat.pb.h"
#include "chat/history/memory_history.hpp"
#include "chat/history/open.hpp"
#include "chat/history/sqlite_history.hpp"
#include "chat/history/store.hpp"
#include "message_frames.hpp"
#include "test_server.hpp"

using namespace chat;
using history::Store;
using hub::Frame;
using test::ids;
using test::Ids;
using Said = std::vector<std::string>;

namespace {

/// Message `id` of `room`, its content "<room>#<id>" (the frame does not
/// name its room: the content tells which room's it is).
Frame said(const std::string& room, std::uint64_t id) {
    ChatRequest request;
    request.set_type("message");
    request.set_user_name("ann");
    request.set_content(room + "#" + std::to_string(id));
    request.set_id(id);
    return std::make_shared<const std::string>(request.SerializeAsString());
}

/// Messages `first` to `last` of `room`.
std::vector<Store::RoomMessage> in(const std::string& room, std::uint64_t first,
                                   std::uint64_t last) {
    std::vector<Store::RoomMessage> out;
    for (auto id = first; id <= last; ++id) {
        out.push_back({room, id, said(room, id)});
    }
    return out;
}

/// Message `id` of `room` alone, for the one-room append.
std::vector<std::pair<std::uint64_t, Frame>> one(const std::string& room, std::uint64_t id) {
    return {{id, said(room, id)}};
}

/// The contents of serialised messages, in order.
Said contents(const std::vector<Frame>& frames) {
    return test::each(frames, [](const ChatRequest& request) { return request.content(); });
}

/// "<room>#<id>" for ids `first` to `last`.
Said range(const std::string& room, std::uint64_t first, std::uint64_t last) {
    Said out;
    for (auto id = first; id <= last; ++id) {
        out.push_back(room + "#" + std::to_string(id));
    }
    return out;
}

/// A time of the test's own, `ms` after some origin: activity is compared,
/// never measured.
Store::Clock::time_point at(std::int64_t ms) {
    return Store::Clock::time_point(std::chrono::milliseconds(1'700'000'000'000 + ms));
}

/// What a file holds, read from another connection.
std::int64_t count(const std::filesystem::path& path, const std::string& query) {
    SQLite::Database db(path.string(), SQLite::OPEN_READONLY);
    return db.execAndGet(query).getInt64();
}

/// A file as schema version 1 left it (its statements copied from that
/// version's store.cpp): the lobby's messages 1 to `last`, test::message(id)
/// each, under `epoch`, stopped cleanly or not.
void write_version_1(const std::filesystem::path& path, std::uint64_t last,
                     const std::string& epoch, bool clean_stop) {
    std::filesystem::create_directories(path.parent_path());
    SQLite::Database db(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA journal_mode=WAL");
    SQLite::Transaction transaction(db);
    db.exec(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, frame BLOB NOT NULL);");
    db.exec("PRAGMA user_version = 1");
    SQLite::Statement meta(db, "INSERT INTO meta (key, value) VALUES (?, ?)");
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"epoch", epoch},
                                     {"clean_stop", clean_stop ? "1" : "0"}}) {
        meta.bind(1, key);
        meta.bind(2, value);
        meta.exec();
        meta.reset();
    }
    SQLite::Statement insert(db, "INSERT INTO messages (id, frame) VALUES (?, ?)");
    for (std::uint64_t id = 1; id <= last; ++id) {
        const auto frame = test::message(id);
        insert.bind(1, static_cast<std::int64_t>(id));
        insert.bind(2, frame->data(), static_cast<int>(frame->size()));
        insert.exec();
        insert.reset();
    }
    transaction.commit();
}

int user_version(const std::filesystem::path& path) {
    SQLite::Database db(path.string(), SQLite::OPEN_READONLY);
    return db.execAndGet("PRAGMA user_version").getInt();
}

struct Db {
    test::TempDir dir;
    std::filesystem::path path = dir.path() / "sub" / "chat.db";
};

/// What a reply carries, waited for.
std::optional<std::vector<Frame>> read_before(hub::History& history, std::uint64_t before) {
    std::promise<std::optional<std::vector<Frame>>> answer;
    history.read_before("", before, 100, [&](auto frames) { answer.set_value(std::move(frames)); });
    return answer.get_future().get();
}

/// Opens `room` in `history`, waited for.
hub::RoomStart open_room(hub::History& history, const std::string& room) {
    std::promise<hub::RoomStart> answer;
    history.open_room(room, 100, [&](hub::RoomStart start) { answer.set_value(std::move(start)); });
    return answer.get_future().get();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(history_rooms, Db)

BOOST_AUTO_TEST_CASE(each_room_numbers_its_own_messages_from_1) {
    {
        Store store(path, 1000);
        // One batch, rooms interleaved as a gathering of the store thread
        // would hold them; each room's ids rise on their own.
        std::vector<Store::RoomMessage> batch;
        for (std::uint64_t id = 1; id <= 5; ++id) {
            batch.push_back({"", id, said("", id)});
            batch.push_back({"a", id, said("a", id)});
            if (id <= 2) {
                batch.push_back({"b", id, said("b", id)});
            }
        }
        store.append(batch, at(0));
        store.append("a", one("a", 6), at(1));
        BOOST_TEST(store.last_id() == 5u);  // the lobby's
        BOOST_TEST(store.find("")->last_id == 5u);
        BOOST_TEST(store.find("a")->last_id == 6u);
        BOOST_TEST(store.find("b")->last_id == 2u);
        BOOST_TEST(!store.find("c"));
        BOOST_TEST((contents(store.newest("a", 100)) == range("a", 1, 6)));
        BOOST_TEST((contents(store.newest("b", 100)) == range("b", 1, 2)));
        BOOST_TEST((contents(store.newest(100)) == range("", 1, 5)));
        BOOST_TEST(store.newest("c", 100).empty());
        store.mark_clean_stop();
    }
    // The count of each room goes on after a restart, under the same epoch.
    Store store(path, 1000);
    BOOST_TEST(store.last_id() == 5u);
    BOOST_TEST(store.find("a")->last_id == 6u);
    BOOST_TEST(store.find("b")->last_id == 2u);
    BOOST_TEST(store.room_count() == 2u);
}

BOOST_AUTO_TEST_CASE(room_names_are_kept_as_they_are) {
    Store store(path, 1000);
    // Any text is a name: quotes, SQL, other scripts, case; nothing is
    // escaped by hand (bound parameters), nothing is folded.
    const Said names{"it's", "a\"b", "x'); DROP TABLE messages; --", "Ünïcode 房间", "A", "a"};
    for (const auto& name : names) {
        store.append(in(name, 1, 2));
    }
    for (const auto& name : names) {
        BOOST_TEST((contents(store.newest(name, 100)) == range(name, 1, 2)), name);
    }
    BOOST_TEST(store.room_count() == names.size());
    BOOST_TEST(store.last_id() == 0u);  // none of them is the lobby
}

BOOST_AUTO_TEST_CASE(each_room_keeps_its_own_newest) {
    Store store(path, 5);
    store.append(in("", 1, 12));
    auto batch = in("a", 1, 3);
    const auto b = in("b", 1, 8);
    batch.insert(batch.end(), b.begin(), b.end());
    store.append(batch);
    // A busy room does not push a quiet one's messages out, nor the lobby's.
    BOOST_TEST((contents(store.newest(100)) == range("", 8, 12)));
    BOOST_TEST((contents(store.newest("a", 100)) == range("a", 1, 3)));
    BOOST_TEST((contents(store.newest("b", 100)) == range("b", 4, 8)));
    store.append(in("a", 4, 9));
    BOOST_TEST((contents(store.newest("a", 100)) == range("a", 5, 9)));
    BOOST_TEST((contents(store.newest("b", 100)) == range("b", 4, 8)));
    BOOST_TEST(count(path, "SELECT count(*) FROM messages") == 15);
}

BOOST_AUTO_TEST_CASE(pages_are_per_room) {
    Store store(path, 1000);
    store.append(in("", 1, 250));
    store.append(in("a", 1, 30));
    // Rule 14's page below B, in each room alone.
    BOOST_TEST((contents(store.before("a", 11, 100)) == range("a", 1, 10)));
    BOOST_TEST((contents(store.before("a", 31, 5)) == range("a", 26, 30)));
    BOOST_TEST((contents(store.before("a", 1000, 100)) == range("a", 1, 30)));
    BOOST_TEST(store.before("a", 1, 100).empty());
    BOOST_TEST((contents(store.before("", 200, 100)) == range("", 100, 199)));
    BOOST_TEST((contents(store.before(31, 3)) == range("", 28, 30)));  // the lobby's own
    BOOST_TEST(store.before("nowhere", 100, 100).empty());
}

BOOST_AUTO_TEST_CASE(a_forgotten_room_goes_with_its_messages_and_starts_again_empty) {
    Store store(path, 1000);
    store.append(in("", 1, 3));
    store.append(in("a", 1, 4));
    store.append(in("b", 1, 2));
    BOOST_TEST(store.forget("a"));
    BOOST_TEST(!store.find("a"));
    BOOST_TEST(store.newest("a", 100).empty());
    BOOST_TEST(!store.forget("a"));  // gone already
    BOOST_TEST(!store.forget("never there"));
    // The others are as they were; no message of "a" is left in the file.
    BOOST_TEST((contents(store.newest("b", 100)) == range("b", 1, 2)));
    BOOST_TEST(count(path, "SELECT count(*) FROM messages") == 5);
    BOOST_TEST(count(path,
                     "SELECT count(*) FROM messages WHERE room NOT IN "
                     "(SELECT key FROM rooms)") == 0);
    BOOST_TEST(store.room_count() == 1u);
    // The lobby is never forgotten.
    BOOST_TEST(!store.forget(""));
    BOOST_TEST((contents(store.newest(100)) == range("", 1, 3)));
    // A room of the same name later is a new one: nothing of the old, but
    // its count goes on, so that id 1 to 4 name no second message in this
    // epoch (rule 12).
    BOOST_TEST(store.create("a"));
    BOOST_TEST(store.find("a")->last_id == 4u);
    BOOST_TEST(store.newest("a", 100).empty());
    store.append(in("a", 5, 5));
    BOOST_TEST((contents(store.newest("a", 100)) == range("a", 5, 5)));
    // Forgotten again, with or without messages: the count stays.
    BOOST_TEST(store.forget("a"));
    BOOST_TEST(store.create("a"));
    BOOST_TEST(store.forget("a"));
    BOOST_TEST(store.create("a"));
    BOOST_TEST(store.find("a")->last_id == 5u);
}

BOOST_AUTO_TEST_CASE(forgotten_counts_past_the_bound_fold_into_a_floor) {
    Store store(path, 1000, 2);
    store.append(in("a", 1, 3));
    store.append(in("b", 1, 5));
    store.append(in("c", 1, 1));
    for (const auto* room : {"a", "b", "c"}) {
        BOOST_TEST(store.forget(room));
    }
    BOOST_TEST(count(path, "SELECT count(*) FROM forgotten") == 2);  // "a" folded
    BOOST_TEST(store.create("a"));
    BOOST_TEST(store.find("a")->last_id == 3u);  // the floor: 3
    BOOST_TEST(store.create("fresh"));
    BOOST_TEST(store.find("fresh")->last_id == 3u);
    BOOST_TEST(store.create("b"));
    BOOST_TEST(store.find("b")->last_id == 5u);  // by name still
    BOOST_TEST(!store.find("b")->keeps_messages);
    BOOST_TEST(count(path, "SELECT count(*) FROM forgotten") == 1);  // "c"
}

BOOST_AUTO_TEST_CASE(a_room_made_again_and_left_without_a_message_keeps_its_count) {
    {
        Store store(path, 1000);
        store.append(in("a", 1, 3));
        BOOST_TEST(store.forget("a"));
        BOOST_TEST(store.create("a"));
        store.mark_clean_stop();
    }
    Store store(path, 1000);  // it had no message: gone at the start, its count kept
    BOOST_TEST(!store.find("a"));
    BOOST_TEST(store.create("a"));
    BOOST_TEST(store.find("a")->last_id == 3u);
}

BOOST_AUTO_TEST_CASE(a_new_epoch_forgets_the_counts_of_forgotten_rooms) {
    {
        Store store(path, 1000);
        store.append(in("a", 1, 3));
        BOOST_TEST(store.forget("a"));
        store.mark_clean_stop();
    }
    {
        Store store(path, 1000);  // the same epoch: the count is kept
        BOOST_TEST(store.create("a"));
        BOOST_TEST(store.find("a")->last_id == 3u);
        BOOST_TEST(store.forget("a"));
        // No clean stop: the next start takes a new epoch.
    }
    Store store(path, 1000);
    BOOST_TEST(!store.clean_start());
    BOOST_TEST(store.create("a"));
    BOOST_TEST(store.find("a")->last_id == 0u);
}

BOOST_AUTO_TEST_CASE(the_quietest_room_without_users_is_found) {
    Store store(path, 1000);
    BOOST_TEST(!store.quietest());      // only the lobby
    store.append(in("", 1, 1), at(0));  // never a candidate
    store.append(in("old", 1, 1), at(10));
    store.append(in("mid", 1, 1), at(20));
    BOOST_TEST(store.create("new", at(30)));  // a join, no message yet
    store.append(in("busy", 1, 1), at(5));
    store.append("busy", one("busy", 2), at(40));  // its last message counts
    BOOST_TEST((store.find("busy")->active == at(40)));
    BOOST_TEST((store.find("new")->active == at(30)));
    BOOST_TEST(store.room_count() == 4u);

    BOOST_TEST(store.quietest().value_or("") == "old");
    store.set_occupied("old", true);
    store.set_occupied("mid", true);
    BOOST_TEST(store.quietest().value_or("") == "new");
    store.set_occupied("new", true);
    store.set_occupied("busy", true);
    BOOST_TEST(!store.quietest());  // every room has users: "too many rooms"
    for (const auto* room : {"old", "mid", "new", "busy"}) {
        store.set_occupied(room, false);
    }

    // Forgetting the quietest makes way for the next.
    BOOST_TEST(store.forget(*store.quietest()));
    BOOST_TEST(store.quietest().value_or("") == "mid");
    // Equals: the older room first.
    store.append(in("mid", 2, 2), at(50));
    store.append(in("later", 1, 1), at(50));
    store.append(in("new", 1, 1), at(50));
    store.append(in("busy", 3, 3), at(50));
    BOOST_TEST(store.quietest().value_or("") == "mid");
    // A restart: nobody is in a room.
    store.set_occupied("mid", true);
}

BOOST_AUTO_TEST_CASE(create_makes_a_room_once_and_a_start_forgets_the_ones_without_messages) {
    {
        Store store(path, 1000);
        BOOST_TEST(store.create("a", at(1)));
        BOOST_TEST(!store.create("a", at(2)));  // there: left as it is
        BOOST_TEST((store.find("a")->active == at(1)));
        BOOST_TEST(store.find("a")->last_id == 0u);
        BOOST_TEST(store.create("b", at(3)));
        store.append(in("b", 1, 2), at(4));
        BOOST_TEST(!store.create("", at(5)));  // the lobby always is
        BOOST_TEST(store.room_count() == 2u);
        store.mark_clean_stop();
    }
    // No one is in a room at a start: "a" had users only, and is gone.
    Store store(path, 1000);
    BOOST_TEST(!store.find("a"));
    BOOST_TEST(store.find("b")->last_id == 2u);
    BOOST_TEST(store.find("")->last_id == 0u);
    BOOST_TEST(store.room_count() == 1u);
}

BOOST_AUTO_TEST_CASE(a_failed_batch_keeps_none_of_its_messages_and_creates_no_room) {
    Store store(path, 1000);
    store.append(in("", 1, 2));
    store.append(in("a", 1, 2));
    SQLite::Database other(path.string(), SQLite::OPEN_READWRITE);
    other.exec(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON messages WHEN NEW.id = 3 "
        "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    std::vector<Store::RoomMessage> batch{{"", 3, said("", 3)}, {"new", 1, said("new", 1)}};
    batch.push_back({"a", 3, said("a", 3)});
    BOOST_CHECK_THROW(store.append(batch, at(7)), SQLite::Exception);
    BOOST_TEST(store.last_id() == 2u);
    BOOST_TEST(!store.find("new"));
    BOOST_TEST(store.find("a")->last_id == 2u);
    BOOST_TEST((store.find("a")->active != at(7)));
    other.exec("DROP TRIGGER fail_insert");
    store.append(batch, at(7));  // every statement is usable again
    BOOST_TEST(store.last_id() == 3u);
    BOOST_TEST(store.find("new")->last_id == 1u);
    BOOST_TEST((store.find("a")->active == at(7)));
}

/// Both histories the hub can have follow rule 17's rooms alike.
void rooms_run_out_and_the_quietest_without_users_goes(hub::History& history,
                                                       const metrics::Metrics& counters) {
    using Outcome = hub::RoomStart::Outcome;
    const auto a = open_room(history, "a");
    BOOST_TEST((a.outcome == Outcome::opened));
    BOOST_TEST(a.last_id == 0u);
    BOOST_TEST_REQUIRE(history.try_append("a", 1, said("a", 1)));
    BOOST_TEST_REQUIRE(history.try_append("a", 2, said("a", 2)));
    history.vacate("a");  // kept: it has messages
    BOOST_TEST((open_room(history, "b").outcome == Outcome::opened));
    BOOST_TEST(counters.rooms_kept.load() == 2);
    // A third: "a" is the quietest without users, and goes.
    BOOST_TEST((open_room(history, "c").outcome == Outcome::opened));
    BOOST_TEST(counters.rooms_kept.load() == 2);
    // Every room has users now.
    BOOST_TEST((open_room(history, "d").outcome == Outcome::too_many));
    // "a" again is a new room whose count goes on (rule 12).
    history.vacate("b");                         // no messages: gone at once
    const auto again = open_room(history, "a");  // after the vacate, in order
    BOOST_TEST(counters.rooms_kept.load() == 2);
    BOOST_TEST((again.outcome == Outcome::opened));
    BOOST_TEST(again.last_id == 2u);
    BOOST_TEST(again.newest.empty());
    // An existing room opens with its newest messages.
    BOOST_TEST_REQUIRE(history.try_append("c", 1, said("c", 1)));
    history.vacate("c");
    const auto c = open_room(history, "c");
    BOOST_TEST(c.last_id == 1u);
    BOOST_TEST((contents(c.newest) == range("c", 1, 1)));
}

BOOST_AUTO_TEST_CASE(the_sqlite_history_opens_vacates_and_forgets_rooms) {
    metrics::Metrics counters;
    history::SqliteHistory kept({.db = path, .keep = 1000, .max_rooms = 2}, counters);
    rooms_run_out_and_the_quietest_without_users_goes(kept, counters);
}

BOOST_AUTO_TEST_CASE(the_memory_history_opens_vacates_and_forgets_rooms) {
    metrics::Metrics counters;
    history::MemoryHistory kept({.db = {}, .keep = 1000, .max_rooms = 2}, &counters);
    rooms_run_out_and_the_quietest_without_users_goes(kept, counters);
}

BOOST_AUTO_TEST_CASE(the_memory_history_keeps_its_bound_over_all_rooms) {
    history::MemoryHistory kept({.db = {}, .keep = 3, .max_rooms = 10});
    open_room(kept, "a");
    open_room(kept, "b");
    for (std::uint64_t id = 1; id <= 2; ++id) {
        BOOST_TEST_REQUIRE(kept.try_append("a", id, said("a", id)));
    }
    for (std::uint64_t id = 1; id <= 2; ++id) {
        BOOST_TEST_REQUIRE(kept.try_append("b", id, said("b", id)));
    }
    // Four messages, three kept: the oldest of all (a's first) went.
    std::promise<std::optional<std::vector<Frame>>> a;
    kept.read_before("a", 100, 100, [&](auto frames) { a.set_value(std::move(frames)); });
    BOOST_TEST((contents(*a.get_future().get()) == range("a", 2, 2)));
    std::promise<std::optional<std::vector<Frame>>> b;
    kept.read_before("b", 100, 100, [&](auto frames) { b.set_value(std::move(frames)); });
    BOOST_TEST((contents(*b.get_future().get()) == range("b", 1, 2)));
    // A room whose messages all went still counts on when it is made again.
    BOOST_TEST_REQUIRE(kept.try_append("b", 3, said("b", 3)));
    BOOST_TEST_REQUIRE(kept.try_append("b", 4, said("b", 4)));  // a's 2 goes: none left
    kept.vacate("a");  // no message left: forgotten, its count kept
    BOOST_TEST(open_room(kept, "a").last_id == 2u);
}

BOOST_AUTO_TEST_CASE(the_hubs_history_is_the_lobby) {
    {
        Store store(path, 1000);
        store.append(in("a", 1, 5));
        store.append(in("", 1, 2));
        store.mark_clean_stop();
    }
    metrics::Metrics counters;
    {
        history::SqliteHistory kept({.db = path, .keep = 1000}, counters);
        const auto start = kept.start(10);
        BOOST_TEST(start.last_id == 2u);
        BOOST_TEST((contents(start.newest) == range("", 1, 2)));
        BOOST_TEST_REQUIRE(kept.try_append("", 3, said("", 3)));
        BOOST_TEST((contents(*read_before(kept, 100)) == range("", 1, 3)));
    }
    Store store(path, 1000);
    BOOST_TEST(store.clean_start());
    BOOST_TEST(store.last_id() == 3u);
    BOOST_TEST((contents(store.newest("a", 100)) == range("a", 1, 5)));
}

BOOST_AUTO_TEST_CASE(a_file_of_schema_version_1_becomes_the_lobby_with_its_ids_and_epoch) {
    write_version_1(path, 20, "0123456789abcdef", true);
    {
        Store store(path, 1000);
        BOOST_TEST(user_version(path) == Store::schema_version);
        BOOST_TEST(store.clean_start());
        BOOST_TEST(store.epoch() == "0123456789abcdef");  // the ids still name the same messages
        BOOST_TEST(store.last_id() == 20u);
        BOOST_TEST((ids(store.newest(100)) == ids(store.before(21, 100))));
        BOOST_TEST(ids(store.newest(100)).size() == 20u);
        BOOST_TEST(ids(store.newest(1)).front() == 20u);
        BOOST_TEST(*store.newest(1).front() == *test::message(20));  // the bytes as they were
        BOOST_TEST(store.room_count() == 0u);
        // It goes on as any file of this version.
        const std::vector<std::pair<std::uint64_t, Frame>> next{{21, test::message(21)}};
        store.append("", next);
        store.append(in("a", 1, 3));
        BOOST_TEST((ids(store.before(3, 100)) == Ids{1, 2}));
        BOOST_TEST(store.find("a")->last_id == 3u);
        store.mark_clean_stop();
    }
    Store store(path, 1000);
    BOOST_TEST(store.epoch() == "0123456789abcdef");
    BOOST_TEST(store.last_id() == 21u);
}

BOOST_AUTO_TEST_CASE(a_file_of_schema_version_1_that_did_not_stop_cleanly_gets_a_new_epoch) {
    write_version_1(path, 7, "0123456789abcdef", false);
    Store store(path, 1000);
    BOOST_TEST(!store.clean_start());
    BOOST_TEST(store.epoch() != "0123456789abcdef");
    BOOST_TEST(store.last_id() == 7u);  // the count goes on from the last kept
}

BOOST_AUTO_TEST_CASE(an_upgrade_that_fails_leaves_the_file_as_it_was) {
    write_version_1(path, 20, "0123456789abcdef", true);
    {
        // Something in the way of the upgrade's last statements: a table
        // named as the one it renames into place would be.
        SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
        db.exec("CREATE VIEW messages_v2 AS SELECT 1");
    }
    BOOST_CHECK_EXCEPTION(Store(path, 1000), history::OpenError, [&](const auto& error) {
        BOOST_TEST_MESSAGE(error.what());
        return std::string(error.what()).find("history database " + path.string() + ": ") !=
               std::string::npos;
    });
    // All of it rolled back: version 1, its table, its messages, its epoch.
    BOOST_TEST(user_version(path) == 1);
    BOOST_TEST(count(path, "SELECT count(*) FROM messages") == 20);
    BOOST_TEST(count(path, "SELECT count(*) FROM pragma_table_info('messages')") == 2);
    BOOST_TEST(count(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'rooms'") == 0);
    BOOST_TEST(count(path, "SELECT count(*) FROM meta WHERE key = 'clean_stop' AND value = '1'") ==
               1);
    {
        SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
        db.exec("DROP VIEW messages_v2");
    }
    Store store(path, 1000);  // once the obstacle is gone
    BOOST_TEST(store.epoch() == "0123456789abcdef");
    BOOST_TEST(store.last_id() == 20u);
}

BOOST_AUTO_TEST_CASE(a_file_of_the_next_schema_version_is_refused_naming_it_and_left_alone) {
    {
        Store store(path, 1000);
        store.append(in("a", 1, 2));
        store.mark_clean_stop();
    }
    {
        SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
        db.exec("PRAGMA user_version = " + std::to_string(Store::schema_version + 1));
    }
    const auto next = "schema version " + std::to_string(Store::schema_version + 1);
    BOOST_CHECK_EXCEPTION(Store(path, 1000), history::OpenError, [&](const auto& error) {
        const std::string what = error.what();
        BOOST_TEST_MESSAGE(what);
        return what.find("history database " + path.string() + ": ") != std::string::npos &&
               what.find(next) != std::string::npos;
    });
    // Not marked in use, nothing forgotten: a newer server finds it as it left it.
    BOOST_TEST(user_version(path) == Store::schema_version + 1);
    BOOST_TEST(count(path, "SELECT count(*) FROM meta WHERE key = 'clean_stop' AND value = '1'") ==
               1);
    BOOST_TEST(count(path, "SELECT count(*) FROM messages") == 2);
    // And the server's own way in says the same (chat_app exits with 2).
    metrics::Metrics counters;
    BOOST_CHECK_THROW(history::open({.db = path, .keep = 1000}, counters), history::OpenError);
}

BOOST_AUTO_TEST_SUITE_END()
