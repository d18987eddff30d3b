#include "chat/session/server.hpp"

#include <system_error>

#include <boost/asio/post.hpp>

#include "chat/logging/log.hpp"
#include "http_session.hpp"
#include "shared_state.hpp"

namespace chat::session {

namespace {
using asio::ip::tcp;

/// How long the listener pauses when the process has no file descriptor left
/// (EMFILE): long enough not to spin, short enough to recover quickly.
constexpr std::chrono::milliseconds accept_backoff{100};

bool out_of_descriptors(const error_code& ec) {
    return ec == asio::error::no_descriptors || ec == std::errc::too_many_files_open_in_system ||
           ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

void log_exception(std::string_view what, const std::exception_ptr& e) {
    if (e) {
        CHAT_LOG(error) << what << " failed: " << logging::describe(e);
    }
}
}  // namespace

SharedState::SharedState(Config configuration, metrics::Metrics& server_metrics,
                         hub::History& history, asio::any_io_executor hub_executor,
                         hub::Sequencer* cluster)
    : config(std::move(configuration)),
      metrics(server_metrics),
      clock(cluster != nullptr ? hub::FrameClock::Source::sequencer
                               : hub::FrameClock::Source::wall),
      hub(std::move(hub_executor), metrics, clock, history,
          hub::HubLimits{.writers_awake = config.writers_awake,
                         .history_on_join = config.history_on_join,
                         .resume_limit = config.resume_limit,
                         .presence_batch_above = config.presence_batch_above,
                         .presence_interval = config.presence_interval,
                         .welcome_list_limit = config.welcome_list_limit,
                         .max_rooms_per_user = config.max_rooms_per_user,
                         .cache_bytes = config.room_cache_bytes},
          cluster),
      files(config.www_root, config.www_assets),
      router(files, metrics, config, accepting, [this] { return hub.available(); }),
      limits(config.max_connections, config.max_connections_per_address) {}

void SharedState::session_ended() {
    if (--sessions_ == 0 && on_last_session_) {
        on_last_session_();
    }
}

Server::Server(net::IoContexts& contexts, Config config, metrics::Metrics& metrics,
               hub::History& history, hub::Sequencer* cluster)
    : contexts_(contexts),
      state_(std::make_shared<SharedState>(std::move(config), metrics, history,
                                           contexts.main().get_executor(), cluster)),
      main_(contexts.main().get_executor()),
      acceptor_(main_),
      backoff_(main_),
      grace_(main_) {
    const auto& settings = state_->config;
    const tcp::endpoint endpoint(asio::ip::make_address(settings.address), settings.port);
    try {
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(asio::socket_base::max_listen_connections);
    } catch (const std::system_error& error) {
        throw std::system_error(error.code(), "cannot listen on " + settings.address + ":" +
                                                  std::to_string(settings.port));
    }
    // The last session to end may let the shutdown finish.
    state_->on_last_session([this] { asio::post(main_, [this] { maybe_finish(); }); });
}

Server::~Server() {
    // No thread runs the io_contexts now. Sessions still to be destroyed with
    // them must not call back into this object.
    state_->on_last_session({});
    // A shutdown whose grace period ran out stopped the io_contexts with
    // connections still registered: the hub lets go of them, or they and the
    // shared state would keep each other alive.
    state_->hub.abandon();
}

asio::ip::tcp::endpoint Server::local_endpoint() const {
    return acceptor_.local_endpoint();
}

void Server::start() {
    asio::co_spawn(state_->hub.executor(), state_->hub.run(), [this](const std::exception_ptr& e) {
        if (e) {
            // Without its hub the server would only look alive: /healthz
            // answering, every login waiting forever.
            CHAT_LOG(error) << "hub failed: " << logging::describe(e)
                            << "; stopping the server (exit 1) rather than serve without it";
            failed_ = true;
            contexts_.stop();
            return;
        }
        asio::post(main_, [this] {
            hub_done_ = true;
            maybe_finish();
        });
    });
    asio::co_spawn(main_, accept_loop(),
                   [](const std::exception_ptr& e) { log_exception("listener", e); });
    CHAT_LOG(info) << "listening on " << local_endpoint() << ", serving " << state_->files.root();
}

awaitable<void> Server::accept_loop() {
    const auto& config = state_->config;
    bool backing_off = false;
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(contexts_.next(), use_nothrow);
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
            break;  // stop()
        }
        if (ec) {
            if (out_of_descriptors(ec)) {
                if (!std::exchange(backing_off, true)) {
                    CHAT_LOG(warning) << "accept: " << ec.message() << "; backing off";
                }
                backoff_.expires_after(accept_backoff);
                co_await backoff_.async_wait(use_nothrow);
            } else {
                CHAT_LOG(debug) << "accept: " << ec.message();
            }
            continue;
        }
        if (std::exchange(backing_off, false)) {
            CHAT_LOG(info) << "accept: recovered";
        }
        const auto id = state_->next_connection_id();
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        const auto peer = socket.remote_endpoint(ignored);
        CHAT_LOG_CONN(debug, id) << "connection from " << peer;
        auto ticket = state_->limits.admit_address(peer.address());
        if (!ticket) {
            state_->metrics.refused(metrics::RefuseReason::address_limit);
            CHAT_LOG_CONN(info, id) << "refused: " << peer.address() << " has "
                                    << config.max_connections_per_address << " connections";
        }
        const auto executor = socket.get_executor();
        asio::co_spawn(
            executor,
            run_http_session(state_, HttpStream(std::move(socket)), id, std::move(ticket)),
            [](const std::exception_ptr& e) { log_exception("connection", e); });
    }
}

void Server::stop() {
    asio::post(main_, [this] { begin_stop(); });
}

void Server::begin_stop() {
    if (std::exchange(stopping_, true)) {
        return;
    }
    CHAT_LOG(info) << "shutting down: " << state_->sessions() << " chat connections to close";
    state_->accepting.store(false, std::memory_order_relaxed);
    error_code ignored;
    acceptor_.close(ignored);
    backoff_.cancel();
    state_->hub.stop();
    grace_.expires_after(state_->config.shutdown_grace);
    grace_.async_wait([this](error_code ec) {
        if (!ec) {
            CHAT_LOG(warning) << "shutdown grace period over with " << state_->sessions()
                              << " chat connections still open";
        }
        contexts_.stop();
    });
    maybe_finish();
}

void Server::maybe_finish() {
    if (stopping_ && hub_done_ && state_->sessions() == 0) {
        grace_.cancel();  // its handler stops the io_contexts
    }
}

const metrics::Metrics& Server::metrics() const noexcept {
    return state_->metrics;
}

}  // namespace chat::session
