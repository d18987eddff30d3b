#include "ws_session.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>

#include "chat/chat.pb.h"
#include "chat/logging/log.hpp"
#include "server_state.hpp"

namespace chat::session {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace asio::experimental::awaitable_operators;

namespace {
/// Frames written per system call at most: enough to amortise the call, few
/// enough that a pong made meanwhile is not held back long.
constexpr std::size_t frames_per_flush = 64;

FrameHandler::Limits limits_of(const Config& config) {
    return {config.max_content_bytes, config.rate, config.burst, config.flood_limit};
}
}  // namespace

WsSession::WsSession(std::shared_ptr<ServerState> state, beast::tcp_stream stream, hub::PeerId id,
                     ConnectionLimits::Ticket address_ticket, ConnectionLimits::Ticket chat_ticket)
    : Peer(id, stream.get_executor(), state->config.queue_depth),
      state_(std::move(state)),
      strand_(stream.get_executor()),
      ws_(std::move(stream)),
      close_deadline_(strand_),
      handler_(id, limits_of(state_->config)),
      address_ticket_(std::move(address_ticket)),
      chat_ticket_(std::move(chat_ticket)) {
    state_->session_started();
}

WsSession::~WsSession() {
    state_->session_ended();
}

awaitable<void> WsSession::run(Request upgrade) {
    const auto self = shared_from_this();
    const auto& config = state_->config;
    // Beast's timeouts replace the TCP stream's: handshake and close are bounded,
    // an idle peer is pinged at half the idle timeout and dropped at the whole.
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(
        websocket::stream_base::timeout{config.handshake_timeout, config.idle_timeout, true});
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "chat"); }));
    ws_.read_message_max(config.max_message_bytes);
    ws_.binary(true);
    ws_.auto_fragment(false);  // one frame per message: fewer bytes, nothing gained by pieces

    if (auto [ec] = co_await ws_.async_accept(upgrade, use_nothrow); ec) {
        CHAT_LOG_CONN(debug, id()) << "WebSocket handshake failed: " << ec.message();
        co_return;
    }
    auto& metrics = state_->metrics;
    metrics.add(metrics.connections_open, 1);
    metrics.add(metrics.connections_total);
    CHAT_LOG_CONN(info, id()) << "chat connection open";

    hub::Command join = hub::Register{self};
    if (!co_await state_->hub.send(std::move(join))) {
        close(hub::CloseCode::going_away);  // shutting down
    }
    co_await (read_loop() && write_loop());
    co_await unregister();  // in case the reader was cut short by an exception
    ended_ = true;          // a close() arriving now must not arm the deadline
    close_deadline_.cancel();
    // Give the places back now, not when the last reference goes: a client
    // that saw this connection end may connect again at once.
    address_ticket_ = {};
    chat_ticket_ = {};
    metrics.add(metrics.connections_open, -1);
    CHAT_LOG_CONN(info, id()) << "chat connection closed";
}

void WsSession::close(hub::CloseCode code) {
    frames().close(code);
    asio::post(strand_, [self = shared_from_this()] { self->arm_close_deadline(); });
}

awaitable<void> WsSession::read_loop() {
    auto& metrics = state_->metrics;
    beast::flat_buffer buffer;
    std::optional<hub::CloseCode> close_code;
    for (;;) {
        auto [ec, size] = co_await ws_.async_read(buffer, use_nothrow);
        if (ec) {
            if (ec == beast::error::timeout) {
                CHAT_LOG_CONN(info, id()) << "dropped: idle timeout";
                metrics.dropped(hub::DropReason::idle);
            } else if (ec == websocket::error::message_too_big) {
                CHAT_LOG_CONN(info, id()) << "dropped: message larger than "
                                          << state_->config.max_message_bytes << " bytes";
                metrics.dropped(hub::DropReason::protocol_error);
            } else {
                CHAT_LOG_CONN(debug, id()) << "read ended: " << ec.message();
            }
            break;  // Beast has closed or torn down the connection already
        }
        metrics.add(metrics.frames_received);
        if (!ws_.got_binary()) {
            CHAT_LOG_CONN(info, id()) << "dropped: text frame";
            metrics.dropped(hub::DropReason::protocol_error);
            close_code = hub::CloseCode::unsupported_data;
            break;
        }
        const std::string_view frame(static_cast<const char*>(buffer.data().data()), size);
        auto action = handler_.handle(frame, RateLimiter::Clock::now());
        buffer.consume(buffer.size());
        if (buffer.capacity() > std::size_t{16} * 1024) {
            buffer.shrink_to_fit();  // one large frame must not pin its buffer
        }

        if (auto* forward = std::get_if<Forward>(&action)) {
            if (!co_await state_->hub.send(std::move(forward->command))) {
                close_code = hub::CloseCode::going_away;
                break;
            }
        } else if (const auto* reply = std::get_if<Answer>(&action)) {
            if (reply->type == "error") {
                CHAT_LOG_CONN(debug, id()) << "client error: " << reply->content;
            }
            if (!answer(*reply)) {
                CHAT_LOG_CONN(info, id()) << "dropped: outgoing queue full (slow consumer)";
                metrics.dropped(hub::DropReason::slow_consumer);
                close_code = hub::CloseCode::policy_violation;
                break;
            }
        } else {
            const auto& disconnect = std::get<Disconnect>(action);
            if (disconnect.reason) {
                CHAT_LOG_CONN(info, id()) << "dropped: " << hub::label(*disconnect.reason);
                metrics.dropped(*disconnect.reason);
            }
            close_code = disconnect.code;
            break;
        }
    }
    end_reading(close_code);
    co_await unregister();
}

void WsSession::end_reading(std::optional<hub::CloseCode> code) {
    frames().close(code);
    if (code) {
        arm_close_deadline();
    }
}

awaitable<void> WsSession::unregister() {
    if (std::exchange(unregistered_, true)) {
        co_return;
    }
    hub::Command leave = hub::Unregister{id()};
    co_await state_->hub.send(std::move(leave));
}

bool WsSession::answer(const Answer& reply) {
    const auto pushed = frames().try_push_stamped(state_->clock, [&](std::int64_t stamp) {
        ChatRequest frame;
        frame.set_type(std::string(reply.type));
        frame.set_content(std::string(reply.content));
        frame.set_timestamp(stamp);
        return std::make_shared<const std::string>(frame.SerializeAsString());
    });
    return pushed != hub::FrameQueue::Push::full;
}

awaitable<void> WsSession::write_loop() {
    auto& metrics = state_->metrics;
    std::vector<hub::Frame> batch;
    for (;;) {
        const auto next = co_await frames().next_batch(batch);
        for (std::size_t done = 0; done < batch.size(); done += frames_per_flush) {
            const auto count = std::min(frames_per_flush, batch.size() - done);
            if (const auto ec = co_await write_frames({batch.data() + done, count})) {
                CHAT_LOG_CONN(debug, id()) << "write failed: " << ec.message();
                // Aborted: Beast is closing the stream (the peer's close frame
                // came) and its teardown, still to send our close frame, ends
                // the connection. Any other error: the socket is broken, and
                // dropping it wakes the reader at once.
                if (ec != asio::error::operation_aborted) {
                    abort();
                }
                co_return;
            }
        }
        metrics.add(metrics.frames_sent, batch.size());
        if (next.last) {
            if (next.close_code) {
                const websocket::close_reason reason(
                    static_cast<websocket::close_code>(*next.close_code));
                if (auto [ec] = co_await ws_.async_close(reason, use_nothrow); ec) {
                    CHAT_LOG_CONN(debug, id()) << "close handshake failed: " << ec.message();
                    abort();
                }
            }
            co_return;
        }
    }
}

awaitable<error_code> WsSession::write_frames(std::span<const hub::Frame> frames) {
    // Several frames: corked, so that they leave in one system call. The first
    // write is Beast's asynchronous one: it waits for Beast's write lock, so a
    // ping or pong already under way is done before the batch. The others only
    // need Beast's framing: written synchronously while corked, they are
    // appended to the layer's buffer without an asynchronous operation each.
    auto& layer = ws_.next_layer();
    const bool corked = frames.size() > 1;
    if (corked) {
        layer.cork(asio::buffer(*frames.front()));
    }
    auto [ec, n] = co_await ws_.async_write(asio::buffer(*frames.front()), use_nothrow);
    for (const auto& frame : frames.subspan(1)) {
        if (ec) {
            break;
        }
        ws_.write(asio::buffer(*frame), ec);
    }
    if (corked) {
        // Even after an error: the batch ends here, and a control frame of
        // Beast's may be waiting to leave after it.
        auto [flush_ec] = co_await layer.async_flush(use_nothrow);
        if (!ec) {
            ec = flush_ec;
        }
    }
    co_return ec;
}

void WsSession::arm_close_deadline() {
    if (ended_ || std::exchange(deadline_armed_, true)) {
        return;
    }
    // Enough for a live peer to take what is queued and answer the close frame.
    close_deadline_.expires_after(state_->config.handshake_timeout);
    close_deadline_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) {
            CHAT_LOG_CONN(debug, self->id()) << "close deadline passed: dropping the connection";
            self->abort();
        }
    });
}

void WsSession::abort() {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
}

}  // namespace chat::session
