#pragma once
// A chat server: the listener and the shutdown; the hub and the connections
// live in what they share (SharedState, private to the module).

#include <atomic>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "chat/hub/history.hpp"
#include "chat/hub/sequencer.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/net/asio.hpp"
#include "chat/net/io_contexts.hpp"
#include "chat/session/config.hpp"

namespace chat::session {

class SharedState;

/// Binds on construction, serves after start(), and shuts down gracefully on
/// stop() (rule 11): it stops accepting, closes every WebSocket connection
/// with 1001, waits for them up to the grace period, then stops the
/// io_contexts so that their run() returns. Give it io_contexts of its own,
/// and destroy it once they no longer run. The hub and the listener live on
/// their main(), each connection on the next() of them.
class Server {
  public:
    /// `metrics` and `history` are the server's counters and kept messages;
    /// both must outlive this object, and `history` must stop answering
    /// (be destroyed) before `contexts` is. Throws std::system_error naming the
    /// address when it cannot listen, and std::runtime_error when the www
    /// folder is unusable.
    /// With a `cluster` (which must outlive the server), it is one node of a
    /// room that several share (rule 15).
    Server(net::IoContexts& contexts, Config config, metrics::Metrics& metrics,
           hub::History& history, hub::Sequencer* cluster = nullptr);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Where it listens (the real port when the configured one was 0).
    asio::ip::tcp::endpoint local_endpoint() const;

    void start();

    /// Thread-safe; idempotent.
    void stop();

    const metrics::Metrics& metrics() const noexcept;

    /// The hub ended by an exception: the server stopped the io_contexts at
    /// once rather than serve on without it. Its owner exits non-zero, so
    /// that a supervisor starts it again.
    bool failed() const noexcept { return failed_.load(); }

  private:
    awaitable<void> accept_loop();
    void begin_stop();    // on main_
    void maybe_finish();  // on main_

    net::IoContexts& contexts_;
    std::shared_ptr<SharedState> state_;
    // The main io_context, one thread: the listener, timers and shutdown need
    // no strand of their own there (docs/architecture.md, threads).
    asio::io_context::executor_type main_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer backoff_;  // accept paused for lack of file descriptors
    asio::steady_timer grace_;    // shutdown
    bool stopping_ = false;       // on main_
    bool hub_done_ = false;       // on main_
    std::atomic<bool> failed_{false};
};

}  // namespace chat::session
