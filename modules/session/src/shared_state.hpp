#pragma once
// What every connection of one server shares. Each connection holds a
// shared_ptr to it, so it outlives them whatever the order of destruction;
// the Server (listener and shutdown) holds it too.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "chat/hub/frame_clock.hpp"
#include "chat/hub/hub.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/session/config.hpp"
#include "chat/session/connection_limits.hpp"
#include "chat/session/router.hpp"
#include "chat/session/static_files.hpp"

namespace chat::session {

class SharedState {
  public:
    /// `hub_executor` is where the hub runs; `cluster`, when given, sequences
    /// the room (rule 15).
    SharedState(Config config, metrics::Metrics& metrics, hub::History& history,
                asio::any_io_executor hub_executor, hub::Sequencer* cluster);

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
    std::int64_t sessions() const noexcept { return sessions_.load(); }

    /// Called, from any thread, each time the last session has ended. Set
    /// and cleared only while no thread runs the server's io_contexts.
    void on_last_session(std::function<void()> call) { on_last_session_ = std::move(call); }

  private:
    std::atomic<hub::PeerId> last_connection_id_{0};
    std::atomic<std::int64_t> sessions_{0};
    std::function<void()> on_last_session_;
};

}  // namespace chat::session
