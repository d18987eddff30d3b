#pragma once
// What every connection of one server shares. Each connection holds a
// shared_ptr to it, so it outlives them whatever the order of destruction.

#include <atomic>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "chat/hub/frame_clock.hpp"
#include "chat/hub/hub.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/session/config.hpp"
#include "chat/session/connection_limits.hpp"
#include "chat/session/router.hpp"
#include "chat/session/static_files.hpp"

namespace chat::session {

class ServerState : public std::enable_shared_from_this<ServerState> {
  public:
    ServerState(asio::io_context& io, Config config, metrics::Metrics& metrics,
                hub::History& history);

    asio::io_context& io;
    const Config config;
    metrics::Metrics& metrics;
    hub::FrameClock clock;
    hub::Hub hub;
    std::atomic<bool> accepting{true};  // logins are taken (/healthz); false once stopping
    const StaticFiles files;
    const Router router;
    ConnectionLimits limits;

    hub::PeerId next_connection_id() noexcept { return ++last_connection_id_; }

    /// A WebSocket session exists from its constructor to its destructor;
    /// shutdown waits for the last one.
    void session_started() noexcept { ++sessions_; }
    void session_ended();

    asio::ip::tcp::acceptor& acceptor() noexcept { return acceptor_; }
    void start();
    void stop();  // any thread

  private:
    awaitable<void> accept_loop();
    void begin_stop();    // on strand_
    void maybe_finish();  // on strand_

    asio::strand<asio::io_context::executor_type> strand_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer backoff_;  // accept paused for lack of file descriptors
    asio::steady_timer grace_;    // shutdown
    std::atomic<hub::PeerId> last_connection_id_{0};
    std::atomic<std::int64_t> sessions_{0};
    bool stopping_ = false;  // on strand_
    bool hub_done_ = false;  // on strand_
};

}  // namespace chat::session
