#pragma once

#include <memory>

#include <boost/beast/core/tcp_stream.hpp>

#include "chat/net/asio.hpp"

namespace chat::session {

class ServerState;

/// Serves plain HTTP requests on one connection, one at a time, each bounded by
/// the handshake timeout, until the client is done or asks for an upgrade to /ws,
/// which hands the connection to a WsSession.
awaitable<void> run_http_session(std::shared_ptr<ServerState> state,
                                 boost::beast::tcp_stream stream, std::uint64_t id);

}  // namespace chat::session
