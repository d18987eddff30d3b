// Contract rules 12-14 against a real server: history on join, loss-free
// resumes, older pages, and history that survives restarts and kill -9.
#include <boost/test/unit_test.hpp>

#include <csignal>

#include <boost/asio/steady_timer.hpp>

#include "chat_app_process.hpp"
#include "server_test.hpp"

using namespace chat;
using namespace chat::test;

namespace {

/// The ids of a history frame's messages; they must be consecutive.
Ids consecutive_ids(const ChatRequest& history) {
    BOOST_TEST_REQUIRE(history.type() == "history");
    Ids ids;
    for (const auto& message : history.history()) {
        BOOST_TEST_REQUIRE(message.type() == "message");
        BOOST_TEST_REQUIRE((ids.empty() || message.id() == ids.back() + 1));
        ids.push_back(message.id());
    }
    return ids;
}

Ids range(std::uint64_t first, std::uint64_t last) {
    Ids ids;
    for (auto id = first; id <= last; ++id) {
        ids.push_back(id);
    }
    return ids;
}

/// `n` messages from `client`, each awaited back (notices skipped), so that
/// they are all broadcast and numbered when it returns; the last id.
awaitable<std::uint64_t> say(ChatClient& client, int n, std::string_view prefix = "m") {
    std::uint64_t last = 0;
    for (int i = 0; i < n; ++i) {
        co_await client.send(make_request("message", {}, std::string(prefix) + std::to_string(i)));
        for (;;) {
            const auto frame = co_await client.receive();
            BOOST_TEST_REQUIRE(frame.has_value());
            if (frame->type() == "message") {
                last = frame->id();
                break;
            }
        }
    }
    co_return last;
}

/// Sends `n` messages from each of two clients, interleaved.
awaitable<void> flood(ChatClient& a, ChatClient& b, int n) {
    for (int i = 0; i < n; ++i) {
        co_await a.send(make_request("message", {}, "a" + std::to_string(i)));
        co_await b.send(make_request("message", {}, "b" + std::to_string(i)));
    }
}

/// Comes back as `name` from id `seen` and checks that every id above it up
/// to `last` arrives exactly once, the history first, then live.
awaitable<void> resume_and_check(const TestServer& server, std::string name, std::string epoch,
                                 std::uint64_t seen, std::uint64_t last) {
    auto back = co_await connected(server);
    co_await back.resume(name, seen, epoch);
    auto expected = seen + 1;
    for (const auto id : consecutive_ids(back.history())) {
        BOOST_TEST_REQUIRE(id == expected++);
    }
    while (expected <= last) {
        const auto frame = co_await back.receive();
        BOOST_TEST_REQUIRE(frame.has_value());
        if (frame->type() != "message") {
            continue;  // another's join or leave
        }
        BOOST_TEST_REQUIRE(frame->id() == expected++);
    }
}

session::Config history_config() {
    auto config = test_config();
    config.rate = 0;  // the tests send quickly on purpose
    config.history_on_join = 5;
    config.resume_limit = 20;
    return config;
}

std::vector<std::string> app_args(const std::filesystem::path& db) {
    return {"--address", "127.0.0.1", "--port", "0", "--threads",    "2",
            "--log-dir", "",          "--rate", "0", "--history-db", db.string()};
}

awaitable<void> no_pause() {
    co_return;
}

/// chat_app on `db`: ann logs in and says `n` messages, `then(port)` is
/// awaited, and the process gets `signal`. The epoch ann was told.
template <typename Then>
std::string run_and_stop(const std::filesystem::path& db, int n, int signal, Then then) {
    ChatApp app(app_args(db));
    const auto port = app.port();
    std::string epoch;
    run([&]() -> awaitable<void> {
        ChatClient ann(co_await asio::this_coro::executor);
        co_await ann.connect(port);
        // Into a local first (docs/architecture.md, trap 8).
        const auto welcome = co_await ann.login("ann");
        epoch = welcome.epoch();
        co_await say(ann, n);
        co_await then(port);
    });
    app.signal(signal);
    const int expected = signal == SIGTERM ? 0 : 128 + signal;
    BOOST_TEST_REQUIRE(app.wait_exit(std::chrono::seconds(10)) == expected);
    return epoch;
}

/// chat_app on `db` again: `body(bob)` with a connected client, then a
/// graceful stop.
template <typename Body>
void run_again(const std::filesystem::path& db, Body body) {
    ChatApp app(app_args(db));
    const auto port = app.port();
    run([&]() -> awaitable<void> {
        ChatClient bob(co_await asio::this_coro::executor);
        co_await bob.connect(port);
        co_await body(bob);
    });
    app.signal(SIGTERM);
    BOOST_TEST(app.wait_exit(std::chrono::seconds(10)) == 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(history)

BOOST_AUTO_TEST_CASE(rule_13_a_newcomer_gets_the_newest_after_its_welcome) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            BOOST_TEST(ann.history().history_size() == 0);  // nothing said yet: empty
            co_await say(ann, 8);
            auto bob = co_await connected(server);
            const auto welcome = co_await bob.login("bob");
            BOOST_TEST(welcome.id() == 8u);
            BOOST_TEST(welcome.epoch().size() == 16u);
            BOOST_TEST((consecutive_ids(bob.history()) == range(4, 8)));
            BOOST_TEST(bob.history().history(4).content() == "m7");
            BOOST_TEST(bob.history().history(4).user_name() == "ann");
        },
        history_config());
}

BOOST_AUTO_TEST_CASE(rule_13_a_resume_after_a_drop_misses_nothing_and_gets_nothing_twice) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            auto bob = co_await connected(server);
            const auto epoch = (co_await bob.login("bob")).epoch();
            co_await ann.expect("login");
            const auto seen = co_await say(ann, 3);
            for (std::uint64_t id = 1; id <= seen; ++id) {
                BOOST_TEST((co_await bob.expect("message")).id() == id);
            }
            // bob drops; ann goes on meanwhile.
            boost::beast::get_lowest_layer(bob.stream()).socket().close();
            BOOST_TEST((co_await ann.expect("logout")).user_name() == "bob");
            co_await say(ann, 7);
            auto back = co_await connected(server);
            const auto welcome = co_await back.resume("bob", seen, epoch);
            BOOST_TEST(welcome.id() == 10u);
            BOOST_TEST((consecutive_ids(back.history()) == range(4, 10)));
            // Live messages follow, from 11: none missed, none twice.
            co_await say(ann, 1);
            BOOST_TEST((co_await back.expect("message")).id() == 11u);
        },
        history_config());
}

BOOST_AUTO_TEST_CASE(rule_13_another_epoch_gets_the_newest_and_a_long_absence_the_limit) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await connected(server);
            const auto epoch = (co_await ann.login("ann")).epoch();
            co_await say(ann, 30);
            auto stranger = co_await connected(server);
            co_await stranger.resume("stranger", 25, "not-this-history");
            BOOST_TEST(
                (consecutive_ids(stranger.history()) == range(26, 30)));  // --history-on-join 5
            auto away = co_await connected(server);
            co_await away.resume("away", 2, epoch);  // 28 missing, --resume-limit 20
            BOOST_TEST((consecutive_ids(away.history()) == range(11, 30)));
            auto future = co_await connected(server);
            co_await future.resume("future", 31, epoch);  // above the last: not a resume
            BOOST_TEST((consecutive_ids(future.history()) == range(26, 30)));
        },
        history_config());
}

BOOST_AUTO_TEST_CASE(rule_14_older_pages_down_to_the_first_message) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            auto stranger = co_await connected(server);
            auto early = make_request("history");
            early.set_id(5);
            co_await stranger.send(early);  // before login
            BOOST_TEST(!(co_await stranger.expect("error")).content().empty());
            co_await stranger.send(make_request("history"));  // no id
            BOOST_TEST(!(co_await stranger.expect("error")).content().empty());

            co_await say(ann, 230);
            std::uint64_t oldest = 231;
            Ids all;
            for (;;) {
                auto request = make_request("history");
                request.set_id(oldest);
                co_await ann.send(request);
                const auto page = consecutive_ids(co_await ann.expect("history"));
                if (page.empty()) {
                    break;
                }
                BOOST_TEST(page.size() <= 100u);
                BOOST_TEST(page.back() == oldest - 1);
                all.insert(all.begin(), page.begin(), page.end());
                oldest = page.front();
            }
            BOOST_TEST((all == range(1, 230)));
        },
        history_config());
}

BOOST_AUTO_TEST_CASE(two_clients_resume_while_others_flood) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            auto cid = co_await logged_in(server, "cid");
            co_await ann.expect("login");
            std::vector<ChatClient> resumers;
            std::string epoch;
            for (const auto* name : {"r1", "r2"}) {
                resumers.push_back(co_await connected(server));
                epoch = (co_await resumers.back().login(name)).epoch();
            }
            co_await say(ann, 2);
            for (auto& r : resumers) {
                boost::beast::get_lowest_layer(r.stream()).socket().close();
            }
            // Until the server has seen a connection close, its name is taken
            // (rule 3): they come back once cid has heard both leave.
            for (int left = 0; left < 2;) {
                const auto frame = co_await cid.receive();
                BOOST_TEST_REQUIRE(frame.has_value());
                left += frame->type() == "logout" ? 1 : 0;
            }
            // The flood goes on while they come back; each must see every id
            // from 3 on exactly once, history first, then live.
            constexpr int messages_each = 300;
            const std::uint64_t last = 2 + 2 * messages_each;
            std::vector<awaitable<void>> tasks;
            tasks.push_back(flood(ann, cid, messages_each));
            tasks.push_back(resume_and_check(server, "r1", epoch, 2, last));
            tasks.push_back(resume_and_check(server, "r2", epoch, 2, last));
            co_await all(std::move(tasks));
        },
        [] {
            auto config = history_config();
            config.resume_limit = 1000;  // however far the flood got, nothing is skipped
            return config;
        }());
}

BOOST_AUTO_TEST_CASE(rule_12_a_restart_keeps_the_history_the_ids_and_the_epoch) {
    TempDir dir;
    const auto db = dir.path() / "data" / "chat.db";  // the folder is made
    const auto epoch = run_and_stop(db, 3, SIGTERM, [](std::uint16_t) { return no_pause(); });
    run_again(db, [&](ChatClient& bob) -> awaitable<void> {
        const auto welcome = co_await bob.resume("bob", 1, epoch);
        BOOST_TEST(welcome.epoch() == epoch);  // a graceful stop keeps it
        BOOST_TEST(welcome.id() == 3u);
        BOOST_TEST((consecutive_ids(bob.history()) == range(2, 3)));
        BOOST_TEST((co_await say(bob, 1)) == 4u);  // the count goes on
    });
}

BOOST_AUTO_TEST_CASE(rule_12_after_kill_9_every_message_is_there_under_a_new_epoch) {
    TempDir dir;
    const auto db = dir.path() / "chat.db";
    // Messages not yet written may be lost (rule 12: hence the new epoch);
    // crash once the store says it has written all five.
    const auto epoch = run_and_stop(db, 5, SIGKILL, [](std::uint16_t port) -> awaitable<void> {
        BOOST_TEST_REQUIRE(co_await metric_reaches(port, "chat_messages_stored_total", 5));
    });
    run_again(db, [&](ChatClient& bob) -> awaitable<void> {
        const auto welcome = co_await bob.resume("bob", 3, epoch);
        BOOST_TEST(welcome.epoch() != epoch);                         // unclean stop: a new epoch
        BOOST_TEST(welcome.id() == 5u);                               // everything was kept
        BOOST_TEST((consecutive_ids(bob.history()) == range(1, 5)));  // not a resume: the newest
        BOOST_TEST(bob.history().history(4).content() == "m4");
    });
}

BOOST_AUTO_TEST_CASE(rule_12_a_second_server_on_the_same_file_stops_and_the_epoch_stays) {
    TempDir dir;
    const auto db = dir.path() / "chat.db";
    // While the first runs, a second is started by mistake on its file: it
    // must not touch it (a new epoch written there would be the one the
    // next start finds). `then` outlives the coroutine it returns.
    const auto epoch = run_and_stop(db, 2, SIGTERM, [&db](std::uint16_t) -> awaitable<void> {
        ChatApp second(app_args(db));
        BOOST_TEST(second.wait_exit(std::chrono::seconds(10)) == 2);
        const auto output = second.output();
        BOOST_TEST(output.find("chat_app: history database " + db.string() +
                               ": in use by another process") != std::string::npos,
                   output);
        co_return;
    });
    run_again(db, [&](ChatClient& bob) -> awaitable<void> {
        const auto welcome = co_await bob.resume("bob", 1, epoch);
        BOOST_TEST(welcome.epoch() == epoch);  // the first's graceful stop kept it
        BOOST_TEST(welcome.id() == 2u);
    });
}

BOOST_AUTO_TEST_CASE(an_unusable_database_stops_the_start_with_exit_code_2) {
    TempDir dir;
    const auto corrupt = dir.path() / "corrupt.db";
    std::ofstream(corrupt) << std::string(4096, 'x');
    ChatApp app(app_args(corrupt));
    BOOST_TEST(app.wait_exit(std::chrono::seconds(10)) == 2);
    const auto output = app.output();
    BOOST_TEST(output.find("chat_app: history database " + corrupt.string()) != std::string::npos,
               output);
    BOOST_TEST(output.find("listening") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(damage_met_at_the_first_read_also_stops_the_start_with_exit_code_2) {
    TempDir dir;
    const auto damaged = dir.path() / "damaged.db";
    write_damaged_history(damaged, 1000);  // opening it does not meet the damage
    ChatApp app(app_args(damaged));
    BOOST_TEST(app.wait_exit(std::chrono::seconds(10)) == 2);
    const auto output = app.output();
    BOOST_TEST(
        output.find("chat_app: history database " + damaged.string() + ": ") != std::string::npos,
        output);
    BOOST_TEST(output.find("listening") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
