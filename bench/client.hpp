#pragma once
// One measured client: logs in, reads every frame, and (if it is one of the
// senders) sends messages whose content carries its index and send time, so
// that every receiver can count the delivery and its latency. Its coroutines
// run on its own strand; the run's counters are shared (run_state.hpp).

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

    /// Sends messages: paced at --rate, or (rate 0) keeping --window of its
    /// own in flight. All the messages due at once leave in one write.
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
};

}  // namespace chat::bench
