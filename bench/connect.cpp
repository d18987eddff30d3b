#include "connect.hpp"

#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>

#include "chat/chat.pb.h"

namespace chat::bench {

awaitable<bool> open_websocket(WebSocket& ws, const Endpoint& server, std::chrono::seconds timeout,
                               std::optional<int> spread_index) {
    using asio::ip::tcp;
    auto& tcp_layer = boost::beast::get_lowest_layer(ws);
    tcp_layer.expires_after(timeout);
    tcp::resolver resolver(ws.get_executor());
    auto [rec, endpoints] = co_await resolver.async_resolve(server.host, server.port, use_nothrow);
    if (rec) {
        co_return false;
    }
    if (spread_index && endpoints.begin()->endpoint().address().is_loopback()) {
        auto& socket = tcp_layer.socket();
        socket.open(tcp::v4());
        const auto source = asio::ip::make_address_v4(static_cast<asio::ip::address_v4::uint_type>(
            (127u << 24) + 2 + *spread_index / clients_per_loopback_address));
        error_code ec;
        socket.bind(tcp::endpoint(source, 0), ec);
    }
    if (auto [cec, connected] = co_await tcp_layer.async_connect(endpoints, use_nothrow); cec) {
        co_return false;
    }
    if (auto [hec] = co_await ws.async_handshake(server.host, server.path, use_nothrow); hec) {
        co_return false;
    }
    ws.binary(true);
    co_return true;
}

std::string user_name(std::string_view prefix, std::initializer_list<int> numbers) {
    std::string name(prefix);
    name += std::to_string(getpid());
    for (const int number : numbers) {
        name += '-';
        name += std::to_string(number);
    }
    return name;
}

std::string login_request(const std::string& name) {
    ChatRequest login;
    login.set_type("login");
    login.set_user_name(name);
    return login.SerializeAsString();
}

}  // namespace chat::bench
