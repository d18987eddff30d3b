#pragma once
// A connection's socket and stream, on its io_context's executor by type.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>

#include "chat/net/asio.hpp"

namespace chat::session {

/// The executor of the io_context a connection is placed on (net::IoContexts),
/// by its type rather than type-erased: an I/O object keeps 8 bytes of it
/// where an any_io_executor takes 56, and so does every operation pending on
/// the object, for the life of an idle connection (docs/architecture.md,
/// memory per idle connection).
using ConnectionExecutor = asio::io_context::executor_type;
/// A chat connection's socket, under Beast's WebSocket stream.
using Socket = asio::basic_stream_socket<asio::ip::tcp, ConnectionExecutor>;
/// A connection before its upgrade: Beast's stream bounds each HTTP exchange.
using HttpStream = boost::beast::basic_stream<asio::ip::tcp, ConnectionExecutor>;

}  // namespace chat::session
