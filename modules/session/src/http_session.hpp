#pragma once

#include <memory>
#include <optional>

#include <boost/beast/core/basic_stream.hpp>

#include "chat/net/asio.hpp"
#include "chat/session/connection_limits.hpp"
#include "connection_types.hpp"

namespace chat::session {

class SharedState;

/// A connection before its upgrade: Beast's stream bounds each HTTP exchange.
using HttpStream = boost::beast::basic_stream<asio::ip::tcp, ConnectionExecutor>;

/// Serves plain HTTP requests on one connection, one at a time, each bounded by
/// the handshake timeout, until the client is done or asks for an upgrade to /ws,
/// which hands the connection to a WsSession. Without `ticket` (its address has
/// its share of connections) the first request is answered 503 and the
/// connection closed.
awaitable<void> run_http_session(std::shared_ptr<SharedState> state, HttpStream stream,
                                 std::uint64_t id, std::optional<ConnectionLimits::Ticket> ticket);

}  // namespace chat::session
