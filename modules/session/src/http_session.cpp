#include "http_session.hpp"

#include <array>
#include <chrono>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "chat/logging/log.hpp"
#include "shared_state.hpp"
#include "ws_session.hpp"

namespace chat::session {

namespace beast = boost::beast;

namespace {
constexpr std::uint32_t header_limit = 8 * 1024;
constexpr std::uint64_t body_limit = std::uint64_t{8} * 1024;  // GET and HEAD carry none

/// The answer to a request that could not be read, if it gets one: a body
/// over the limit is refused for its method first (only GET and HEAD are
/// served, and they carry none), then for its size.
std::optional<http::status> refusal(const error_code& ec,
                                    const http::request_parser<http::string_body>& parser) {
    if (ec.category() != http::make_error_code(http::error::bad_target).category() ||
        ec == http::error::partial_message) {
        return std::nullopt;  // the peer went away, or the socket failed
    }
    if (ec == http::error::header_limit) {
        return http::status::request_header_fields_too_large;
    }
    if (ec == http::error::body_limit) {
        const auto method = parser.get().method();  // the header is read by then
        return method == http::verb::get || method == http::verb::head
                   ? http::status::payload_too_large
                   : http::status::method_not_allowed;
    }
    return http::status::bad_request;
}

/// Closing a socket with unread input resets the connection, and the client
/// may lose the answer it was sent: after a refusal, read what the client is
/// still sending (its body) for a moment before closing.
awaitable<void> linger(HttpStream& stream) {
    constexpr std::size_t drain_limit = std::size_t{64} * 1024;
    constexpr std::chrono::milliseconds drain_time{500};
    error_code ignored;
    stream.socket().shutdown(Socket::shutdown_send, ignored);
    stream.expires_after(drain_time);
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < drain_limit;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_nothrow);
        if (ec) {
            break;  // the client's end, or the time is up
        }
        drained += n;
    }
}
}  // namespace

awaitable<void> run_http_session(std::shared_ptr<SharedState> state, HttpStream stream,
                                 std::uint64_t id, std::optional<ConnectionLimits::Ticket> ticket) {
    // A local, not the parameter: a coroutine frame destroys its locals before
    // its parameters, so the place is given back while `state` (which owns the
    // limits) is alive, even when the frame is destroyed at shutdown.
    auto place = std::move(ticket);
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        stream.expires_after(state->config.handshake_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow);
        if (ec == http::error::end_of_stream) {
            break;
        }
        if (ec) {
            CHAT_LOG_CONN(debug, id) << "HTTP read ended: " << ec.message();
            if (const auto status = refusal(ec, parser)) {
                // A malformed or oversized request is answered before the connection
                // closes: as the request's version, where its header was read.
                const Request unread;
                const Request& request = parser.is_header_done() ? parser.get() : unread;
                co_await beast::async_write(
                    stream, Router::plain(request, *status, http::obsolete_reason(*status), false),
                    use_nothrow);
                co_await linger(stream);
            }
            break;
        }
        Request request = parser.release();
        join_list_fields(request);
        if (!place) {
            co_await beast::async_write(
                stream,
                Router::plain(request, http::status::service_unavailable,
                              "too many connections from your address\n", false),
                use_nothrow);
            break;
        }
        if (beast::websocket::is_upgrade(request)) {
            if (!Router::is_chat_upgrade(request)) {
                co_await beast::async_write(
                    stream, Router::plain(request, http::status::not_found, "not found\n", false),
                    use_nothrow);
                break;
            }
            auto chat_ticket = state->limits.admit_chat();
            if (!chat_ticket) {
                state->metrics.refused(metrics::RefuseReason::server_full);
                CHAT_LOG_CONN(info, id) << "refused: the server has "
                                        << state->config.max_connections << " chat connections";
                co_await beast::async_write(
                    stream,
                    Router::plain(request, http::status::service_unavailable,
                                  "the server is full, try again later\n", false),
                    use_nothrow);
                break;
            }
            stream.expires_never();
            const auto executor = stream.get_executor();
            auto session = std::make_shared<WsSession>(state, stream.release_socket(), id,
                                                       std::move(*place), std::move(*chat_ticket));
            // A coroutine of its own: this one's frame and buffer are not kept
            // for the life of the chat connection (docs/architecture.md,
            // memory per idle connection).
            asio::co_spawn(executor, session->reader(std::make_unique<Request>(std::move(request))),
                           [id](const std::exception_ptr& e) {
                               if (e) {
                                   CHAT_LOG_CONN(error, id)
                                       << "chat connection failed: " << logging::describe(e);
                               }
                           });
            co_return;
        }
        state->metrics.add(state->metrics.http_requests);
        auto response = state->router.respond(request);
        const bool keep_alive = response.keep_alive();
        if (auto [wec, written] =
                co_await beast::async_write(stream, std::move(response), use_nothrow);
            wec || !keep_alive) {
            break;
        }
    }
    error_code ignored;
    stream.socket().shutdown(Socket::shutdown_send, ignored);
}

}  // namespace chat::session
