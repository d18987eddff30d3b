#pragma once
// One chat connection: a reader and a writer coroutine on the connection's thread.

#include <exception>
#include <memory>
#include <optional>
#include <span>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "chat/hub/peer.hpp"
#include "chat/net/kept_wait.hpp"
#include "chat/session/config.hpp"
#include "chat/session/connection_limits.hpp"
#include "chat/session/frame_handler.hpp"
#include "chat/session/router.hpp"
#include "chat/session/shared_write_stream.hpp"
#include "connection_types.hpp"

namespace chat::session {

class SharedState;

/// The reader turns each binary frame into an action (FrameHandler) and either
/// forwards it to the hub, answers the client through its own queue, or ends
/// the connection. The writer drains the queue. The reader owns the end: when
/// it stops it unregisters from the hub, exactly once, with the close code the
/// writer is to send, if any; the hub closes the queue with it after the frames
/// it queued before (if the peer is gone, the reader closes the queue at once).
/// Idle pings and the idle
/// timeout are Beast's (rule 10); a writer stuck on a peer that never reads is
/// cut off by a deadline once the connection is asked to close.
class WsSession final : public hub::Peer, public std::enable_shared_from_this<WsSession> {
  public:
    /// The tickets are the connection's places under the limits, given back
    /// when the session ends.
    /// The socket, not Beast's tcp_stream: Beast's WebSocket timeouts bound
    /// the connection, and a tcp_stream would add its own state (and timers)
    /// to every connection and a layer to every read (docs/architecture.md,
    /// memory per idle connection).
    WsSession(std::shared_ptr<SharedState> state, Socket socket, hub::PeerId id,
              ConnectionLimits::Ticket address_ticket, ConnectionLimits::Ticket chat_ticket);
    ~WsSession() override;

    /// The connection's reader, and its life: accepts the upgrade, starts the
    /// writer() beside it, reads until the connection ends, then finish()es
    /// it. (One frame for both: a reader of its own would be one more frame
    /// for every connection.) The request comes by pointer: by value, this
    /// frame would keep it for that long (docs/architecture.md, memory per
    /// idle connection).
    awaitable<void> reader(std::unique_ptr<Request> upgrade);

    void close(proto::CloseCode code) override;

  private:
    /// The handshake and the registration with the hub; false if the
    /// connection ends there.
    awaitable<bool> open(std::unique_ptr<Request> upgrade);
    /// The connection's end, after the reader's (its frame exists only then).
    awaitable<void> finish(std::exception_ptr failure);
    /// Logs and counts why the reader stopped.
    void read_ended(error_code ec);
    /// What the reader does after a message.
    struct Next {
        std::optional<proto::CloseCode> close;  // end the connection with it
        awaitable<bool> forwarded;              // valid: a command on its way to the hub
    };
    /// What a whole message asks: as act(), after the checks every frame gets.
    Next handle_message(std::string_view frame);
    /// Drains the queue: the connection's other coroutine, beside reader().
    awaitable<void> writer();
    /// What of it the socket takes now (the rest waits, copied); true if all left.
    bool write_now(std::span<const hub::Frame> batch);
    /// Does what the client's frame asks, but for a command to the hub, which
    /// it leaves for the reader to await (without the action: this frame need
    /// not hold one for the life of the connection).
    Next act(Action action);
    /// Tells the hub, once; false if the hub has stopped taking commands.
    awaitable<bool> unregister(std::optional<proto::CloseCode> code);
    /// Queues an error or heartbeat frame for this client; false if its queue is full.
    bool answer(const Answer& answer);
    /// Until writer_ended() (on the strand, while the writer runs).
    awaitable<void> writer_end();
    bool writer_running() const noexcept { return !writer_result_.has_value(); }
    /// The writer's coroutine has ended, with the exception that ended it, if any (on the strand).
    void writer_ended(std::exception_ptr failure);
    void arm_close_deadline();  // on the strand
    void abort();               // on the strand: drop the TCP connection
    Socket& socket() noexcept;
    /// The connection's strand: its io_context's executor, which one thread
    /// runs (docs/architecture.md, threads and strands; not a strand object
    /// of its own), and the one its
    /// queue's writer waits on (kept there once, not twice per connection:
    /// docs/architecture.md, memory per idle connection).
    const ConnectionExecutor& strand() const noexcept { return frames().writer_executor(); }
    /// use_nothrow, completing on strand(), the socket's executor type, which
    /// Asio runs in place. (Through the coroutine's type-erased executor each
    /// completion was wrapped in a function object allocated for the type
    /// erasure; a client that acknowledges costs a read a delivery.)
    auto use_nothrow_here() const { return asio::bind_executor(strand(), use_nothrow); }
    void inject_fault(FaultPoint point) const;

    std::shared_ptr<SharedState> state_;
    // No permessage-deflate (the server never offers it): without its support
    // Beast keeps no compression state in every connection's stream
    // (docs/architecture.md, memory per idle connection).
    boost::beast::websocket::stream<SharedWriteStream<Socket>, false> ws_;
    std::unique_ptr<asio::steady_timer> close_deadline_;  // made when a close is asked for
    net::KeptWait writer_end_;                            // finish() waiting for the writer's end
    FrameHandler handler_;
    ConnectionLimits::Ticket address_ticket_;
    ConnectionLimits::Ticket chat_ticket_;
    /// Where the connection is in its life (on the strand); it only moves on.
    /// (Asked to close: close_deadline_ is made. Closed for good: frames().closed().)
    enum class Stage : std::uint8_t {
        open,          // registered, or on its way
        unregistered,  // the hub has been told it is gone, exactly once
        ended,         // finish() is done: its places are given back
    };
    Stage stage_ = Stage::open;
    // The writer's end (on the strand): none while it runs, then the
    // exception that ended it (null if none).
    std::optional<std::exception_ptr> writer_result_;
};

}  // namespace chat::session
