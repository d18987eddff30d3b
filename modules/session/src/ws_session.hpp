#pragma once
// One chat connection: a reader and a writer coroutine on the connection's strand.

#include <exception>
#include <memory>
#include <optional>
#include <span>

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
    WsSession(std::shared_ptr<SharedState> state, asio::ip::tcp::socket socket, hub::PeerId id,
              ConnectionLimits::Ticket address_ticket, ConnectionLimits::Ticket chat_ticket);
    ~WsSession() override;

    /// Accepts the upgrade and runs the connection to its end. The request
    /// comes by pointer: by value, this frame would keep it for that long
    /// (docs/architecture.md, memory per idle connection).
    awaitable<void> run(std::unique_ptr<Request> upgrade);

    void close(proto::CloseCode code) override;

  private:
    /// The handshake and the registration with the hub; false if the
    /// connection ends there.
    awaitable<bool> open(std::unique_ptr<Request> upgrade);
    /// The connection's end, after the reader's (its frame exists only then).
    awaitable<void> finish(std::exception_ptr failure);
    /// Logs and counts why the reader stopped.
    void read_ended(error_code ec);
    /// What a whole message asks: as act(), after the checks every frame gets.
    std::optional<proto::CloseCode> handle_message(std::string_view frame,
                                                   awaitable<bool>& forwarded);
    awaitable<void> write_loop();
    /// Writes the batch's frames, as few system calls as the socket allows; the error, if any.
    awaitable<error_code> write_frames(std::span<const hub::Frame> batch);
    /// What of it the socket takes now (the rest waits, copied); true if all left.
    bool write_now(std::span<const hub::Frame> batch);
    /// Does what the client's frame asks, but for a command to the hub, which
    /// it leaves in `forwarded` for the reader to await; the code to close
    /// with, if the connection is to end.
    std::optional<proto::CloseCode> act(Action action, awaitable<bool>& forwarded);
    /// Tells the hub, once; false if the hub has stopped taking commands.
    awaitable<bool> unregister(std::optional<proto::CloseCode> code);
    /// Queues an error or heartbeat frame for this client; false if its queue is full.
    bool answer(const Answer& answer);
    /// Until writer_ended() (on the strand, while the writer runs).
    awaitable<void> writer_end();
    /// The writer's coroutine has ended, with the exception that ended it, if any (on the strand).
    void writer_ended(std::exception_ptr failure);
    void arm_close_deadline();  // on the strand
    void abort();               // on the strand: drop the TCP connection
    asio::ip::tcp::socket& socket() noexcept;
    /// The connection's strand: the one its queue's writer waits on (kept
    /// there once, not twice per connection: docs/architecture.md, memory per
    /// idle connection).
    const asio::any_io_executor& strand() const noexcept { return frames().writer_executor(); }
    void inject_fault(FaultPoint point) const;

    std::shared_ptr<SharedState> state_;
    // No permessage-deflate (the server never offers it): without its support
    // Beast keeps no compression state in every connection's stream
    // (docs/architecture.md, memory per idle connection).
    boost::beast::websocket::stream<SharedWriteStream<asio::ip::tcp::socket>, false> ws_;
    std::unique_ptr<asio::steady_timer> close_deadline_;  // made when a close is asked for
    net::KeptWait writer_end_;                            // finish() waiting for the writer's end
    FrameHandler handler_;
    ConnectionLimits::Ticket address_ticket_;
    ConnectionLimits::Ticket chat_ticket_;
    bool deadline_armed_ = false;  // these three on the strand
    bool ended_ = false;
    bool unregistered_ = false;
    bool ping_flood_ = false;            // closed for flooding with pings (on the strand)
    bool writer_running_ = true;         // on the strand
    std::exception_ptr writer_failure_;  // on the strand
};

}  // namespace chat::session
