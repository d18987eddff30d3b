// Rule 11: SIGINT/SIGTERM closes every client with 1001 and exits 0.
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

#include "server_test.hpp"

using namespace chat;
using namespace chat::test;

extern char** environ;

namespace {

/// chat_app as a child process; its console output is collected by a thread.
class ChatApp {
  public:
    explicit ChatApp(std::vector<std::string> args) {
        int out[2];
        BOOST_TEST_REQUIRE(pipe(out) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_adddup2(&actions, out[1], 2);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        args.insert(args.begin(), CHAT_APP_PATH);
        std::vector<char*> argv;
        for (auto& arg : args) {
            argv.push_back(arg.data());
        }
        argv.push_back(nullptr);
        const int spawned =
            posix_spawn(&pid_, CHAT_APP_PATH, &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        close(out[1]);
        BOOST_TEST_REQUIRE(spawned == 0);
        reader_ = std::jthread([this, fd = out[0]] {
            char buffer[4096];
            for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) {
                const std::lock_guard lock(mutex_);
                output_.append(buffer, static_cast<std::size_t>(n));
                changed_.notify_all();
            }
            close(fd);
        });
    }

    ~ChatApp() {
        if (pid_ > 0 && !exited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }

    /// The port from the "listening on ADDRESS:PORT," line, waiting for it.
    std::uint16_t port() {
        std::unique_lock lock(mutex_);
        constexpr std::string_view marker = "listening on ";
        std::size_t comma = std::string::npos;
        const bool found = changed_.wait_for(lock, std::chrono::seconds(20), [&] {
            const auto line = output_.find(marker);
            comma = line == std::string::npos ? line : output_.find(',', line);
            return comma != std::string::npos;
        });
        BOOST_TEST_REQUIRE(found, "no listening line in:\n" << output_);
        const auto colon = output_.rfind(':', comma);
        return static_cast<std::uint16_t>(std::stoi(output_.substr(colon + 1, comma - colon - 1)));
    }

    void signal(int number) { kill(pid_, number); }

    /// Waits for the process to end (a pidfd polled, no sleeping); its exit status or -1.
    int wait_exit(std::chrono::milliseconds limit) {
        const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
        BOOST_TEST_REQUIRE(fd >= 0);
        pollfd entry{fd, POLLIN, 0};
        const int ready = poll(&entry, 1, static_cast<int>(limit.count()));
        close(fd);
        if (ready != 1) {
            return -1;
        }
        int status = 0;
        waitpid(pid_, &status, 0);
        exited_ = true;
        reader_.join();
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    std::string output() {
        const std::lock_guard lock(mutex_);
        return output_;
    }

  private:
    pid_t pid_ = -1;
    bool exited_ = false;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    std::jthread reader_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(graceful_shutdown)

BOOST_AUTO_TEST_CASE(stop_closes_every_chat_connection_with_1001) {
    TestServer server;
    run([&]() -> awaitable<void> {
        ChatClient ann(co_await asio::this_coro::executor);
        co_await ann.connect(server.port());
        co_await ann.login("ann");
        ChatClient anonymous(co_await asio::this_coro::executor);
        co_await anonymous.connect(server.port());
        server.stop();
        BOOST_TEST(co_await ann.wait_close() == 1001);
        BOOST_TEST(co_await anonymous.wait_close() == 1001);
    });
}

BOOST_AUTO_TEST_CASE(clients_leaving_as_the_server_stops_do_not_hold_it_up) {
    // Sessions that end on their own while the hub closes them must not linger:
    // the stop completes long before the grace period (3 s here).
    std::optional<TestServer> server(std::in_place);
    run([&]() -> awaitable<void> {
        std::vector<ChatClient> clients;
        for (int i = 0; i < 20; ++i) {
            clients.push_back(ChatClient(co_await asio::this_coro::executor));
            co_await clients.back().connect(server->port());
            co_await clients.back().login("user" + std::to_string(i));
        }
        clients.clear();  // the sockets close now, and the stop comes right after
        server->stop();
    });
    const auto start = std::chrono::steady_clock::now();
    server.reset();  // waits for the shutdown to complete
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(2)));
}

BOOST_AUTO_TEST_CASE(sigterm_closes_clients_with_1001_and_exits_0) {
    for (const int signal_number : {SIGTERM, SIGINT}) {
        ChatApp app({"--address", "127.0.0.1", "--port", "0", "--threads", "2", "--log-dir", "",
                     "--shutdown-grace", "5"});
        const auto port = app.port();
        std::chrono::steady_clock::duration took{};
        run([&]() -> awaitable<void> {
            ChatClient ann(co_await asio::this_coro::executor);
            co_await ann.connect(port);
            co_await ann.login("ann");
            ChatClient bob(co_await asio::this_coro::executor);
            co_await bob.connect(port);
            co_await bob.login("bob");
            ChatClient anonymous(co_await asio::this_coro::executor);
            co_await anonymous.connect(port);
            const auto start = std::chrono::steady_clock::now();
            app.signal(signal_number);
            BOOST_TEST(co_await ann.wait_close() == 1001);
            BOOST_TEST(co_await bob.wait_close() == 1001);
            BOOST_TEST(co_await anonymous.wait_close() == 1001);
            took = std::chrono::steady_clock::now() - start;
        });
        const int status = app.wait_exit(std::chrono::seconds(10));
        BOOST_TEST(status == 0, "exit status " << status << ", output:\n" << app.output());
        BOOST_TEST((took < std::chrono::seconds(5)));  // well within the grace period
        BOOST_TEST(app.output().find("chat_app stopped") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(bad_options_exit_2_and_help_exits_0) {
    ChatApp bad({"--port", "70000"});
    BOOST_TEST(bad.wait_exit(std::chrono::seconds(10)) == 2);
    BOOST_TEST(bad.output().find("--port") != std::string::npos);
    ChatApp help({"--help"});
    BOOST_TEST(help.wait_exit(std::chrono::seconds(10)) == 0);
    BOOST_TEST(help.output().find("--idle-timeout") != std::string::npos);
    ChatApp busy({"--address", "256.1.1.1"});
    BOOST_TEST(busy.wait_exit(std::chrono::seconds(10)) != 0);
}

BOOST_AUTO_TEST_SUITE_END()
