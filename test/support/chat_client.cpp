#include "chat_client.hpp"

#include <array>
#include <chrono>
#include <stdexcept>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/test/unit_test.hpp>

namespace chat::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::ip::tcp;

ChatRequest make_request(std::string_view type, std::string_view user_name,
                         std::string_view content) {
    ChatRequest request;
    request.set_type(std::string(type));
    request.set_user_name(std::string(user_name));
    request.set_content(std::string(content));
    return request;
}

ChatRequest in_room(std::string_view type, std::string_view room, std::string_view content) {
    auto request = make_request(type, {}, content);
    request.set_room(std::string(room));
    return request;
}

Ids ids_of(const ChatRequest& history) {
    Ids ids;
    for (const auto& message : history.history()) {
        ids.push_back(message.id());
    }
    return ids;
}

ChatClient::ChatClient(asio::any_io_executor executor)
    : ws_(std::move(executor)), pings_(std::make_shared<std::size_t>(0)) {
    // Not `this`: a client is moved around after it is made.
    ws_.control_callback([pings = pings_](websocket::frame_type kind, std::string_view) {
        if (kind == websocket::frame_type::ping) {
            ++*pings;
        }
    });
}

awaitable<void> ChatClient::connect(std::uint16_t port, std::string target) {
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    tcp_layer.expires_after(default_timeout);
    co_await tcp_layer.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                     asio::use_awaitable);
    co_await ws_.async_handshake("127.0.0.1:" + std::to_string(port), target, asio::use_awaitable);
    tcp_layer.expires_never();
    ws_.binary(true);
    ws_.read_message_max(64 * 1024 * 1024);
}

awaitable<void> ChatClient::send(const ChatRequest& request) {
    co_await send_bytes(request.SerializeAsString());
}

awaitable<void> ChatClient::send_bytes(std::string_view bytes, bool binary) {
    ws_.binary(binary);
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    tcp_layer.expires_after(default_timeout);
    co_await ws_.async_write(asio::buffer(bytes.data(), bytes.size()), asio::use_awaitable);
    tcp_layer.expires_never();
    ws_.binary(true);
}

awaitable<std::optional<ChatRequest>> ChatClient::receive(Duration timeout) {
    if (close_code_ != 0) {
        co_return std::nullopt;
    }
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    beast::flat_buffer buffer;
    tcp_layer.expires_after(timeout);
    auto [ec, size] = co_await ws_.async_read(buffer, use_nothrow);
    tcp_layer.expires_never();
    if (ec == beast::error::timeout) {
        throw std::runtime_error("timed out waiting for a frame");
    }
    if (ec == websocket::error::closed) {
        close_code_ = ws_.reason().code;
        co_return std::nullopt;
    }
    if (ec) {
        close_code_ = close_abnormal;
        co_return std::nullopt;
    }
    if (!ws_.got_binary()) {
        throw std::runtime_error("the server sent a text frame");
    }
    ChatRequest frame;
    if (!frame.ParseFromArray(buffer.data().data(), static_cast<int>(size))) {
        throw std::runtime_error("the server sent a frame that is not a ChatRequest");
    }
    // The contract: every frame the server sends is stamped, never decreasing.
    if (frame.timestamp() <= 0 || frame.timestamp() < last_timestamp_) {
        throw std::runtime_error("bad timestamp " + std::to_string(frame.timestamp()) + " after " +
                                 std::to_string(last_timestamp_));
    }
    last_timestamp_ = frame.timestamp();
    co_return frame;
}

awaitable<ChatRequest> ChatClient::expect(std::string_view type, Duration timeout) {
    auto frame = co_await receive(timeout);
    if (!frame) {
        throw std::runtime_error("expected a \"" + std::string(type) +
                                 "\" frame, the connection closed with " +
                                 std::to_string(close_code_));
    }
    if (frame->type() != type) {
        throw std::runtime_error("expected a \"" + std::string(type) + "\" frame, got \"" +
                                 frame->type() + "\" (" + frame->content() + ")");
    }
    co_return *frame;
}

awaitable<std::uint16_t> ChatClient::expect_close(Duration timeout) {
    if (auto frame = co_await receive(timeout)) {
        throw std::runtime_error("expected the connection to close, got a \"" + frame->type() +
                                 "\" frame (" + frame->content() + ")");
    }
    co_return close_code_;
}

awaitable<std::uint16_t> ChatClient::wait_close(Duration timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (co_await receive(deadline - std::chrono::steady_clock::now())) {
    }
    co_return close_code_;
}

awaitable<ChatRequest> ChatClient::login(std::string_view name) {
    co_return co_await resume(name, 0, {});
}

awaitable<ChatRequest> ChatClient::resume(std::string_view name, std::uint64_t id,
                                          std::string_view epoch) {
    auto request = make_request("login", name);
    request.set_id(id);
    request.set_epoch(std::string(epoch));
    co_await send(request);
    auto welcome = co_await expect("login");
    history_ = co_await expect("history");  // directly after it, nothing in between
    co_return welcome;
}

awaitable<void> ChatClient::close() {
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    tcp_layer.expires_after(default_timeout);
    co_await ws_.async_close(websocket::close_code::normal, asio::use_awaitable);
    tcp_layer.expires_never();
    close_code_ = 1000;
}

awaitable<bool> ChatClient::take_close_unanswered() {
    auto& socket = ws_.next_layer();
    std::array<unsigned char, 64> bytes{};
    socket.expires_after(default_timeout);
    const auto n = co_await socket.async_read_some(asio::buffer(bytes), asio::use_awaitable);
    socket.expires_never();
    co_return n >= 2 && bytes[0] == 0x88;  // FIN + opcode 8 (close)
}

awaitable<HttpAnswer> http_request(std::uint16_t port, std::string target, std::string_view method,
                                   std::string_view upgrade_key) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(default_timeout);
    co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                  asio::use_awaitable);
    http::request<http::empty_body> request;
    request.method_string(method);
    request.target(target);
    request.version(11);
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::connection, "close");
    if (!upgrade_key.empty()) {
        request.set(http::field::connection, "Upgrade");
        request.set(http::field::upgrade, "websocket");
        request.set(http::field::sec_websocket_version, "13");
        request.set(http::field::sec_websocket_key, upgrade_key);
    }
    co_await http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(method == "HEAD");
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    const auto& response = parser.get();
    co_return HttpAnswer{response.result_int(), response.body(),
                         std::string(response[http::field::content_type]),
                         std::string(response[http::field::content_length])};
}

long metric_value(const std::string& metrics, const std::string& name) {
    const auto at = metrics.find("\n" + name + " ");
    BOOST_TEST_REQUIRE(at != std::string::npos, name << " missing in\n" << metrics);
    return std::stol(metrics.substr(at + name.size() + 2));
}

awaitable<bool> metric_reaches(std::uint16_t port, std::string name, long value,
                               std::chrono::steady_clock::duration limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        const auto metrics = (co_await http_request(port, "/metrics")).body;
        if (metric_value(metrics, name) >= value) {
            co_return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return false;
        }
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(asio::use_awaitable);
    }
}

}  // namespace chat::test
