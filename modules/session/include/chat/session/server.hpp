#pragma once
// A chat server: the listener, the hub, and the connections they make.

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "chat/hub/history.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/net/asio.hpp"
#include "chat/session/config.hpp"

namespace chat::session {

class ServerState;

/// Binds on construction, serves after start(), and shuts down gracefully on
/// stop() (rule 11): it stops accepting, closes every WebSocket connection
/// with 1001, waits for them up to the grace period, then stops the io_context
/// so that every thread's run() returns. Give it an io_context of its own.
class Server {
  public:
    /// Throws std::system_error naming the address when it cannot listen, and
    /// std::runtime_error when the www folder is unusable.
    /// `metrics` and `history` are the server's counters and kept messages;
    /// both must outlive this object, and `history` must stop answering
    /// (be destroyed) before `io` is.
    Server(asio::io_context& io, Config config, metrics::Metrics& metrics, hub::History& history);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Where it listens (the real port when the configured one was 0).
    asio::ip::tcp::endpoint local_endpoint() const;

    void start();

    /// Thread-safe; idempotent.
    void stop();

    const metrics::Metrics& metrics() const noexcept;

  private:
    std::shared_ptr<ServerState> state_;
};

}  // namespace chat::session
