#include "flood.hpp"

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "chat/chat.pb.h"
#include "clock.hpp"
#include "connect.hpp"
#include "ws_frames.hpp"

namespace chat::bench {

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

constexpr auto connect_timeout = 10s;
constexpr auto close_timeout = 5s;
constexpr auto retry_after = 100ms;  // a failed connection: the next one, soon

/// One connection of a flooder; the drain tells the writer when it closed.
struct Flooder {
    WebSocket ws;
    bool closed = false;
    explicit Flooder(asio::any_io_executor executor) : ws(std::move(executor)) {}
};

/// Reads and drops what the server sends until the connection ends, to
/// learn how it ended: the server's close code, or 1006 without one.
awaitable<void> drain(RunState& run, std::shared_ptr<Flooder> flooder) {
    beast::flat_buffer buffer;
    for (;;) {
        auto [ec, n] = co_await flooder->ws.async_read(buffer, use_nothrow);
        buffer.consume(buffer.size());
        if (ec) {
            run.flooder_closed(ec == websocket::error::closed ? flooder->ws.reason().code
                                                              : close_code_abnormal);
            flooder->closed = true;
            co_return;
        }
    }
}

}  // namespace

awaitable<void> flood(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    ChatRequest message;
    message.set_type("message");
    message.set_content(std::string(static_cast<std::size_t>(o.size), 'f'));
    const auto bytes = message.SerializeAsString();
    for (int round = 0; run.phase.sending.load(std::memory_order_relaxed); ++round) {
        auto flooder = std::make_shared<Flooder>(executor);
        if (!co_await open_websocket(flooder->ws, o.server_for(index), connect_timeout)) {
            co_await pause(retry_after);
            continue;
        }
        auto& tcp_layer = beast::get_lowest_layer(flooder->ws);
        tcp_layer.expires_never();
        const auto login = login_request(user_name("flood", {index, round}));
        if (std::get<0>(co_await flooder->ws.async_write(asio::buffer(login), use_nothrow))) {
            continue;
        }
        run.flood.logins.fetch_add(1, std::memory_order_relaxed);
        asio::co_spawn(executor, drain(run, flooder), asio::detached);
        while (!flooder->closed && run.phase.sending.load(std::memory_order_relaxed)) {
            if (std::get<0>(co_await flooder->ws.async_write(asio::buffer(bytes), use_nothrow))) {
                break;
            }
            run.flood.frames_sent.fetch_add(1, std::memory_order_relaxed);
        }
        if (!flooder->closed) {
            tcp_layer.expires_after(close_timeout);
            co_await flooder->ws.async_close(websocket::close_code::normal, use_nothrow);
        }
    }
}

}  // namespace chat::bench
