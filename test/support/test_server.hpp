#pragma once
// A chat server in the test process: 127.0.0.1, a free port, its own threads.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "chat/net/io_contexts.hpp"
#include "chat/session/server.hpp"

namespace chat::test {

/// The contract's defaults, on 127.0.0.1 port 0 with 2 threads and the
/// project's www folder.
session::Config test_config();

class TestServer {
  public:
    /// History in memory unless `history` is given.
    explicit TestServer(const session::Config& config = test_config(),
                        std::unique_ptr<hub::History> history = nullptr);
    ~TestServer();  // graceful stop, then joins the threads

    std::uint16_t port() const noexcept { return port_; }
    const metrics::Metrics& metrics() const noexcept { return server_.metrics(); }
    void stop() { server_.stop(); }
    /// The server stopped its io_contexts because its hub failed.
    bool failed() const noexcept { return server_.failed(); }
    /// Waits until the server's threads have returned; false if they have
    /// not within `limit`.
    bool wait_stopped(std::chrono::milliseconds limit);

  private:
    net::IoContexts io_;
    metrics::Metrics metrics_;
    std::unique_ptr<hub::History> history_;  // stops before io_ goes
    session::Server server_;
    std::uint16_t port_;
    std::mutex mutex_;
    std::condition_variable stopped_;
    bool running_ = false;  // in io_.run()
    std::jthread thread_;
};

/// A fresh folder under the system's temporary folder, removed at destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const noexcept { return path_; }

  private:
    std::filesystem::path path_;
};

/// A history file at `path` holding messages 1 to `count`, cleanly stopped,
/// whose middle page is then overwritten: damage that opening the file does
/// not meet, only reading the older messages does.
void write_damaged_history(const std::filesystem::path& path, std::uint64_t count);

}  // namespace chat::test
