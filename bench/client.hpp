#pragma once
// One measured client: logs in, reads every frame, and (if it is one of the
// senders) sends messages whose content carries its index and send time, so
// that every receiver can count the delivery and its latency. With --rooms it
// also joins one room and sends and counts there, checking the room's order.
// Its coroutines run on its own strand; the run's counters are shared
// (run_state.hpp).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>

#include "chat/net/asio.hpp"
#include "connect.hpp"
#include "histogram.hpp"
#include "run_state.hpp"
#include "wire.hpp"
#include "ws_frames.hpp"

namespace chat::bench {

class Client : public std::enable_shared_from_this<Client> {
  public:
    Client(RunState& run, asio::any_io_executor strand, int index);

    /// Connects and logs in; false on failure.
    awaitable<bool> start();

    /// Reads until the connection ends: deliveries, latency, gaps, errors,
    /// and the close code if the server closed it.
    awaitable<void> read_loop();

    /// --rooms: sends the join of its room; the read loop takes the welcome
    /// and the history that follow (or the error) and counts the join as
    /// done (RunState::rooms). Before send_loop: it writes through Beast.
    awaitable<void> join_room();

    /// Sends messages: paced at --rate, or (rate 0) keeping --window of its
    /// own in flight. All the messages due at once leave in one write. With
    /// --rooms, in its room, and only once it has joined it.
    awaitable<void> send_loop();

    /// --ack all: every client has one of this sender's messages.
    void acknowledged();

    /// Wakes a sender waiting for acks, to see that sending is over.
    void stop_sending();

    awaitable<void> close();

    asio::any_io_executor executor() { return ws_.get_executor(); }

  private:
    /// The next data message (its fragments joined), answering pings on the
    /// way; nullopt once the connection has ended (close_code_). The view
    /// stays valid until the next call.
    awaitable<std::optional<std::string_view>> next_message();

    void on_frame(const FrameView& view, Histogram& histogram);

    /// --rooms: follows the join and checks a frame against the room the
    /// client is in (rule 17); true for a message of its room to count.
    bool on_room_frame(const FrameView& view);

    /// --rooms: the join is over, welcomed and with its history or not.
    void join_ended(bool joined);

    /// --ack all: every client has a message of client `sender`.
    void acknowledge(int sender) const;

    RunState& run_;
    WebSocket ws_;
    asio::steady_timer wake_;  // a waiting sender: its next message is due, or an ack came
    int index_;
    std::string name_;
    int in_flight_ = 0;    // own messages sent and not yet acknowledged
    bool closed_ = false;  // the read loop has ended: the sender stops
    FrameReader reader_;
    std::string message_;  // a fragmented message being put together
    bool sender_ = false;  // writes its own frames (send_loop), pongs included
    FrameWriter writer_;
    int close_code_ = 0;
    std::uint64_t last_id_ = 0;  // the id of the last message received: gaps

    // --rooms: the one room it joins (-1: the lobby only), where the join
    // stands, and the last message of the room it received: its id, and its
    // sender and send time (one sender's messages arrive in the order sent).
    enum class RoomState : std::uint8_t { none, joining, welcomed, joined, failed };
    int room_;
    RoomState room_state_ = RoomState::none;
    int last_room_sender_ = -1;
    std::uint64_t last_room_id_ = 0;
    std::int64_t last_room_sent_at_ = 0;
};

}  // namespace chat::bench
