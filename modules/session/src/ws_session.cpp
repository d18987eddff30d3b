#include "ws_session.hpp"

#include <algorithm>
#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "chat/chat.pb.h"
#include "chat/logging/log.hpp"
#include "chat/session/frame_header.hpp"
#include "shared_state.hpp"

namespace chat::session {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {
FrameHandler::Limits limits_of(const Config& config) {
    return {config.max_content_bytes, config.rate, config.burst, config.flood_limit};
}

/// Tells the queue that its consumer has ended, and gives back a turn still
/// held, when the writer's frame goes.
struct ConsumerEnd {
    explicit ConsumerEnd(hub::Peer& writer) : peer(writer) {}
    ConsumerEnd(const ConsumerEnd&) = delete;
    ConsumerEnd& operator=(const ConsumerEnd&) = delete;
    ~ConsumerEnd() {
        peer.frames().end_consumer();
        peer.end_turn();
    }
    hub::Peer& peer;
};
}  // namespace

WsSession::WsSession(std::shared_ptr<SharedState> state, Socket socket, hub::PeerId id,
                     ConnectionLimits::Ticket address_ticket, ConnectionLimits::Ticket chat_ticket)
    : Peer(id, socket.get_executor(), state->hub.writers(), state->config.queue_depth,
           state->config.queue_bytes),
      state_(std::move(state)),
      ws_(std::move(socket)),
      handler_(id, limits_of(state_->config)),
      address_ticket_(std::move(address_ticket)),
      chat_ticket_(std::move(chat_ticket)) {
    state_->session_started();
}

WsSession::~WsSession() {
    state_->session_ended();
}

awaitable<bool> WsSession::open(std::unique_ptr<Request> upgrade) {
    const auto& config = state_->config;
    // Beast's timeouts bound the handshake and the close; an idle peer is
    // pinged at half the idle timeout and dropped at the whole.
    ws_.set_option(
        websocket::stream_base::timeout{config.handshake_timeout, config.idle_timeout, true});
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "chat"); }));
    ws_.read_message_max(config.max_message_bytes);
    // Beast answers pings itself, so they never reach the reader: the rate
    // limit sees them here (rule 7).
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
        if (kind == websocket::frame_type::close) {
            return;
        }
        // Once closing, further pings change nothing (and are not counted twice).
        if (const auto flood = handler_.handle_control(RateLimiter::Clock::now());
            flood && !frames().closed()) {
            CHAT_LOG_CONN(info, id())
                << "dropped: " << metrics::label(*flood->reason) << " (pings)";
            state_->metrics.dropped(*flood->reason);
            close(flood->code);
        }
    });
    // The writer frames its messages itself (binary, one frame each) and
    // writes without waiting whenever the socket has room (SharedWriteStream).
    error_code failed;
    socket().non_blocking(true, failed);
    if (failed) {
        CHAT_LOG_CONN(warning, id()) << "cannot make the socket non-blocking: " << failed.message();
        co_return false;
    }
    if (auto [ec] = co_await ws_.async_accept(*upgrade, use_nothrow_here()); ec) {
        CHAT_LOG_CONN(debug, id()) << "WebSocket handshake failed: " << ec.message();
        co_return false;
    }
    upgrade.reset();
    auto& metrics = state_->metrics;
    metrics.add(metrics.connections_open, 1);
    metrics.add(metrics.connections_total);
    CHAT_LOG_CONN(info, id()) << "chat connection open";

    // Commands are built in a variable, never as a temporary inside the
    // co_await (g++ 12 destroys that twice: docs/architecture.md, trap 1).
    hub::Command join = hub::Register{shared_from_this()};
    if (!co_await state_->hub.send(std::move(join))) {
        close(proto::CloseCode::going_away);  // shutting down
    }
    co_return true;
}

awaitable<void> WsSession::reader(std::unique_ptr<Request> upgrade) {
    const auto self = shared_from_this();
    // The handshake and the registration have a frame of their own, freed
    // after them: what they hold is not kept for the life of the connection
    // (docs/architecture.md, memory per idle connection).
    if (!co_await open(std::move(upgrade))) {
        co_return;
    }
    // The writer is a coroutine of its own beside the reader, on the same
    // strand. (Awaiting a reader and the writer with `&&` would do the same
    // with an operator's frame, a parallel group and two spawned coroutines
    // per connection:
    // docs/architecture.md, memory per idle connection.)
    asio::co_spawn(strand(), writer(),
                   [self](std::exception_ptr failure) { self->writer_ended(std::move(failure)); });

    // The reader runs here, in this frame: a frame of its own would be one
    // more for every connection, idle or not. Waiting for a frame it holds no
    // buffer of its own: Beast's holds what arrives. A message that fits in
    // `head` (most do) is read there in one go; a longer one goes on in
    // `rest`, freed after it. (Each byte here is a byte of every connection:
    // docs/architecture.md, memory per idle connection.)
    std::exception_ptr failure;
    try {
        std::array<char, 128> head{};
        beast::flat_buffer rest;
        std::optional<proto::CloseCode> close_code;
        for (;;) {
            auto [ec, size] = co_await ws_.async_read_some(asio::buffer(head), use_nothrow_here());
            std::string_view frame(head.data(), size);
            if (!ec && !ws_.is_message_done()) {
                rest.commit(asio::buffer_copy(rest.prepare(size), asio::buffer(head.data(), size)));
                auto [rest_ec, rest_size] = co_await ws_.async_read(rest, use_nothrow_here());
                ec = rest_ec;
                frame = {static_cast<const char*>(rest.data().data()), rest.size()};
            }
            if (ec) {
                read_ended(ec);
                break;  // Beast has closed or torn down the connection already
            }
            // Decided without waiting; only a command for the hub is awaited.
            auto next = handle_message(frame);
            rest.clear();
            rest.shrink_to_fit();
            close_code = next.close;
            if (close_code) {
                break;
            }
            if (next.forwarded.valid() && !co_await std::move(next.forwarded)) {
                close_code = proto::CloseCode::going_away;
                break;
            }
        }
        if (!close_code) {
            frames().close(std::nullopt);  // the peer is gone: nothing more to write
        }
        // With a code, the hub closes the queue: after the frames it queued
        // before, the broadcasts of this client's own last messages among them.
        if (!co_await unregister(close_code) && close_code) {
            close(*close_code);  // the hub has stopped
        }
    } catch (...) {
        failure = std::current_exception();
        frames().close(std::nullopt);  // the writer stops at once
        abort();
    }
    co_await finish(std::move(failure));
}

awaitable<void> WsSession::finish(std::exception_ptr failure) {
    // Whatever ends the connection (an error, an exception in either loop or
    // after them), the session unregisters and gives its places back: a
    // connection the hub still counted would keep its name taken.
    if (writer_running()) {
        co_await writer_end();
    }
    if (!failure) {
        failure = *writer_result_;
    }
    if (!failure) {
        try {
            inject_fault(FaultPoint::session_end);
        } catch (...) {
            failure = std::current_exception();
        }
    }
    if (failure) {
        CHAT_LOG_CONN(error, id()) << "chat connection failed: " << logging::describe(failure);
        abort();
    }
    co_await unregister(std::nullopt);  // unless the reader did
    stage_ = Stage::ended;              // a close() arriving now must not arm the deadline
    if (close_deadline_) {
        close_deadline_->cancel();
    }
    // Give the places back now, not when the last reference goes: a client
    // that saw this connection end may connect again at once.
    address_ticket_ = {};
    chat_ticket_ = {};
    auto& metrics = state_->metrics;
    metrics.add(metrics.connections_open, -1);
    CHAT_LOG_CONN(info, id()) << "chat connection closed";
}

awaitable<void> WsSession::writer_end() {
    return asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this](auto handler) { writer_end_.keep(std::move(handler)); }, asio::use_awaitable);
}

void WsSession::writer_ended(std::exception_ptr failure) {
    if (failure) {
        abort();  // the reader stops too, and finish() reports it
    }
    writer_result_ = std::move(failure);
    writer_end_.end(strand());  // finish() goes on after this handler, not inside it
}

void WsSession::inject_fault(FaultPoint point) const {
    if (state_->config.inject_fault) {
        state_->config.inject_fault(point, id());
    }
}

void WsSession::close(proto::CloseCode code) {
    frames().close(code);
    asio::post(strand(), [self = shared_from_this()] { self->arm_close_deadline(); });
}

void WsSession::read_ended(error_code ec) {
    auto& metrics = state_->metrics;
    if (ec == beast::error::timeout) {
        CHAT_LOG_CONN(info, id()) << "dropped: idle timeout";
        metrics.dropped(metrics::DropReason::idle);
    } else if (ec == websocket::error::message_too_big) {
        CHAT_LOG_CONN(info, id()) << "dropped: message larger than "
                                  << state_->config.max_message_bytes << " bytes";
        metrics.dropped(metrics::DropReason::protocol_error);
    } else {
        CHAT_LOG_CONN(debug, id()) << "read ended: " << ec.message();
    }
}

WsSession::Next WsSession::handle_message(std::string_view frame) {
    auto& metrics = state_->metrics;
    metrics.add(metrics.frames_received);
    inject_fault(FaultPoint::reader);
    if (!ws_.got_binary()) {
        CHAT_LOG_CONN(info, id()) << "dropped: text frame";
        metrics.dropped(metrics::DropReason::protocol_error);
        return {proto::CloseCode::unsupported_data, {}};
    }
    return act(handler_.handle(frame, RateLimiter::Clock::now()));
}

WsSession::Next WsSession::act(Action action) {
    auto& metrics = state_->metrics;
    if (auto* forward = std::get_if<Forward>(&action)) {
        return {std::nullopt, state_->hub.send(std::move(forward->command))};
    }
    if (const auto* reply = std::get_if<Answer>(&action)) {
        if (reply->type == "error") {
            CHAT_LOG_CONN(debug, id()) << "client error: " << reply->content;
        }
        if (!answer(*reply)) {
            CHAT_LOG_CONN(info, id()) << "dropped: outgoing queue full (slow consumer)";
            metrics.dropped(metrics::DropReason::slow_consumer);
            return {proto::CloseCode::policy_violation, {}};
        }
        return {};
    }
    const auto& disconnect = std::get<Disconnect>(action);
    if (disconnect.reason) {
        CHAT_LOG_CONN(info, id()) << "dropped: " << metrics::label(*disconnect.reason);
        metrics.dropped(*disconnect.reason);
    }
    return {disconnect.code, {}};
}

awaitable<bool> WsSession::unregister(std::optional<proto::CloseCode> code) {
    if (stage_ != Stage::open) {
        co_return true;
    }
    stage_ = Stage::unregistered;
    hub::Command leave = hub::Unregister{id(), code};
    co_return co_await state_->hub.send(std::move(leave));
}

bool WsSession::answer(const Answer& reply) {
    const auto pushed = frames().try_push_stamped(state_->clock, [&](std::int64_t stamp) {
        ChatRequest frame;
        frame.set_type(std::string(reply.type));
        frame.set_content(std::string(reply.content));
        frame.set_room(reply.room);
        frame.set_timestamp(stamp);
        return std::make_shared<const std::string>(frame.SerializeAsString());
    });
    return pushed != hub::FrameQueue::Push::full;
}

awaitable<void> WsSession::writer() {
    auto& metrics = state_->metrics;
    // However this coroutine ends, even destroyed while it waits, the queue
    // learns that nobody takes frames any more (and a turn goes back).
    const ConsumerEnd consumer_end{*this};
    std::vector<hub::Frame> batch;
    for (;;) {
        end_turn();  // what the turn was for has left
        // What is there is taken at once, without a trip through the
        // scheduler's queue (behind every handler in it): take() only to wait.
        auto next = frames().try_take(batch);
        if (!next) {
            next = co_await frames().take(batch);
        }
        if (!batch.empty()) {
            // Beast closing (the peer's close frame came, or the stream failed):
            // its close frame may be on the wire, and nothing may follow it.
            if (!ws_.is_open()) {
                co_return;
            }
            // Most batches leave at once: awaited only when the socket is
            // full or Beast is writing (a coroutine call per write would
            // cost a frame each).
            if (!write_now(batch)) {
                // The rest leaves when it can; meanwhile others take turns.
                end_turn();
                if (auto [ec] = co_await ws_.next_layer().async_wait_written(use_nothrow_here());
                    ec) {
                    CHAT_LOG_CONN(debug, id()) << "write failed: " << ec.message();
                    abort();  // the socket is broken; dropping it wakes the reader at once
                    co_return;
                }
            }
            metrics.add(metrics.frames_sent, batch.size());
            inject_fault(FaultPoint::writer);
        }
        if (next->last) {
            end_turn();  // the close handshake waits for the peer, not the others
            if (next->close_code && ws_.is_open()) {
                const websocket::close_reason reason(
                    static_cast<websocket::close_code>(*next->close_code));
                if (auto [ec] = co_await ws_.async_close(reason, use_nothrow_here()); ec) {
                    CHAT_LOG_CONN(debug, id()) << "close handshake failed: " << ec.message();
                    abort();
                }
            }
            co_return;
        }
    }
}

bool WsSession::write_now(std::span<const hub::Frame> batch) {
    // Each frame as its header and the shared payload: gathered, not copied,
    // from arrays on the stack (nothing allocated per batch). Asio gives a
    // system call at most 64 buffers, so chunks of 32 frames cost no call
    // more; what the socket does not take is copied, so nothing here needs
    // to outlive the call.
    constexpr std::size_t chunk = 32;
    std::array<FrameHeader, chunk> headers;
    std::array<asio::const_buffer, 2 * chunk> buffers;
    bool all_left = true;
    while (!batch.empty()) {
        const auto count = std::min(chunk, batch.size());
        for (std::size_t i = 0; i < count; ++i) {
            const auto& frame = *batch[i];
            headers[i] = FrameHeader(frame.size());
            buffers[2 * i] = asio::const_buffer(headers[i].bytes.data(), headers[i].size);
            buffers[2 * i + 1] = asio::const_buffer(frame.data(), frame.size());
        }
        all_left = ws_.next_layer().write_now(std::span(buffers.data(), 2 * count)) && all_left;
        batch = batch.subspan(count);
    }
    return all_left;
}

void WsSession::arm_close_deadline() {
    if (stage_ == Stage::ended || close_deadline_) {
        return;
    }
    // Enough for a live peer to take what is queued and answer the close frame.
    // Made only now: most connections never need it (docs/architecture.md,
    // memory per idle connection).
    close_deadline_ = std::make_unique<asio::steady_timer>(strand());
    close_deadline_->expires_after(state_->config.handshake_timeout);
    close_deadline_->async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) {
            CHAT_LOG_CONN(debug, self->id()) << "close deadline passed: dropping the connection";
            self->abort();
        }
    });
}

Socket& WsSession::socket() noexcept {
    return ws_.next_layer().next_layer();
}

void WsSession::abort() {
    error_code ignored;
    socket().shutdown(Socket::shutdown_both, ignored);
    socket().close(ignored);
}

}  // namespace chat::session
