#pragma once
// A redis-server of the test's own on a free loopback port (never the
// system's service): stopped, restarted or wiped where a test needs it.

#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "chat_app_process.hpp"

namespace chat::test {

/// A TCP port nothing listens on right now, below the kernel's range of
/// ephemeral ports (32768 and up here), so that no outgoing connection of a
/// test and no server on port 0 takes it before Redis does, or while Redis
/// restarts.
inline std::uint16_t free_port() {
    std::random_device random;
    std::uniform_int_distribution<int> ports(20'000, 32'000);
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        BOOST_TEST_REQUIRE(fd >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(static_cast<std::uint16_t>(ports(random)));
        const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        close(fd);
        if (bound) {
            return ntohs(address.sin_port);
        }
    }
    BOOST_FAIL("no free port between 20000 and 32000");
    return 0;
}

class RedisServer {
  public:
    /// `persistent`: an append-only file in a folder of its own, so that a
    /// restart finds the room again; otherwise a restart finds Redis empty.
    explicit RedisServer(bool persistent = true)
        : dir_(std::filesystem::temp_directory_path() /
               ("chat-redis-" + std::to_string(std::random_device{}()))),
          port_(free_port()),
          persistent_(persistent) {
        std::filesystem::create_directories(dir_);
        start();
    }
    ~RedisServer() {
        process_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
    std::uint16_t port() const noexcept { return port_; }

    /// Starts it (again, on the same port and folder) and waits until it serves.
    void start() {
        process_.emplace(
            "redis-server",
            std::vector<std::string>{"--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", persistent_ ? "yes" : "no",
                                     "--dir", dir_.string(), "--daemonize", "no"});
        BOOST_TEST_REQUIRE(
            process_->wait_output("Ready to accept connections", std::chrono::seconds(20)),
            process_->output());
    }

    /// Killed outright: what it had not written out is lost (a snapshot
    /// taken with save() survives, as after a crash).
    void kill() {
        process_->signal(SIGKILL);
        BOOST_TEST_REQUIRE(process_->wait_exit(std::chrono::seconds(20)) >= 0);
        process_.reset();
    }

    /// Runs one command with redis-cli; its output.
    std::string command(const std::vector<std::string>& args) {
        std::vector<std::string> all{"-p", std::to_string(port_)};
        all.insert(all.end(), args.begin(), args.end());
        Process cli("redis-cli", all);
        BOOST_TEST_REQUIRE(cli.wait_exit(std::chrono::seconds(20)) == 0, cli.output());
        return cli.output();
    }

    /// A graceful stop (SIGTERM: the append-only file is written out).
    void stop() {
        process_->signal(SIGTERM);
        BOOST_TEST_REQUIRE(process_->wait_exit(std::chrono::seconds(20)) == 0);
        process_.reset();
    }

  private:
    std::filesystem::path dir_;
    std::uint16_t port_;
    bool persistent_;
    std::optional<Process> process_;
};

}  // namespace chat::test
