#pragma once
// How every kind of load client reaches the server: a WebSocket stream
// through Beast, connected and upgraded, then a login request as its first
// frame (docs/protocol.md). What each does after that is its own.

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "chat/net/asio.hpp"
#include "options.hpp"

namespace chat::bench {

using WebSocket = boost::beast::websocket::stream<boost::beast::tcp_stream>;

/// Clients per loopback source address: one address has about 28,000
/// ephemeral ports towards one server port.
constexpr int clients_per_loopback_address = 20'000;

/// Resolves `server`, connects and completes the WebSocket handshake, with
/// the stream's timeout set to `timeout` first and left running: the caller
/// ends it once the login is through. Binary frames from then on. false on
/// any failure. With `spread_index` (a client's index, for runs of more
/// clients than one loopback address serves), a loopback server is reached
/// from 127.0.0.2 and up.
awaitable<bool> open_websocket(WebSocket& ws, const Endpoint& server, std::chrono::seconds timeout,
                               std::optional<int> spread_index = std::nullopt);

/// A user name unique to this process: `prefix`, the pid, and each of
/// `numbers` after a dash ("b1234-7"), so that load generators run side by
/// side never ask for the same name.
std::string user_name(std::string_view prefix, std::initializer_list<int> numbers);

/// A client's first frame: the login request for `name`, serialized.
std::string login_request(const std::string& name);

}  // namespace chat::bench
