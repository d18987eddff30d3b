#pragma once
// A connection's socket, on its io_context's executor by type.

#include <boost/asio/ip/tcp.hpp>

#include "chat/hub/frame_queue.hpp"
#include "chat/net/asio.hpp"

namespace chat::session {

/// The executor of the io_context a connection is placed on (net::IoContexts),
/// by its type rather than type-erased: an I/O object keeps 8 bytes of it
/// where an any_io_executor takes 56, and so do the operations pending on it
/// for the life of an idle connection (docs/architecture.md, memory per idle
/// connection). The connection's queue keeps the same one.
using ConnectionExecutor = hub::FrameQueue::WriterExecutor;
/// A connection's socket, before and after its upgrade to WebSocket.
using Socket = asio::basic_stream_socket<asio::ip::tcp, ConnectionExecutor>;

}  // namespace chat::session
