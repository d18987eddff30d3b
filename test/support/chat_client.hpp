#pragma once
// A WebSocket chat client for tests, written against the contract alone.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "chat/chat.pb.h"
#include "chat/net/asio.hpp"

namespace chat::test {

inline constexpr std::chrono::seconds default_timeout{10};

ChatRequest make_request(std::string_view type, std::string_view user_name = {},
                         std::string_view content = {});
/// A request about `room` (rule 17): join, leave, message, history.
ChatRequest in_room(std::string_view type, std::string_view room, std::string_view content = {});

using Ids = std::vector<std::uint64_t>;
/// The ids of a history frame's messages, in order.
Ids ids_of(const ChatRequest& history);

/// Close codes a client can observe; abnormal (1006) means no close frame came.
inline constexpr std::uint16_t close_abnormal = 1006;

class ChatClient {
  public:
    using Stream = boost::beast::websocket::stream<boost::beast::tcp_stream>;
    using Duration = std::chrono::steady_clock::duration;

    explicit ChatClient(asio::any_io_executor executor);

    /// Connects to 127.0.0.1:port and upgrades on `target`; throws on failure.
    awaitable<void> connect(std::uint16_t port, std::string target = "/ws");

    awaitable<void> send(const ChatRequest& request);
    awaitable<void> send_bytes(std::string_view bytes, bool binary = true);

    /// The next frame; nullopt once the connection has ended (see close_code()).
    /// Throws if nothing comes within `timeout`.
    awaitable<std::optional<ChatRequest>> receive(Duration timeout = default_timeout);

    /// The next frame, which must be of `type` (throws otherwise, naming what came).
    awaitable<ChatRequest> expect(std::string_view type, Duration timeout = default_timeout);

    /// The connection must end next, without another frame; returns the close code.
    awaitable<std::uint16_t> expect_close(Duration timeout = default_timeout);

    /// Skips frames until the connection ends; returns the close code.
    awaitable<std::uint16_t> wait_close(Duration timeout = default_timeout);

    /// Logs in as `name` and returns the server's welcome (type login); the
    /// history frame that must follow it (rule 13) is kept in history().
    awaitable<ChatRequest> login(std::string_view name);
    /// The same, resuming from `id` in `epoch`.
    awaitable<ChatRequest> resume(std::string_view name, std::uint64_t id, std::string_view epoch);
    /// The history frame that came with the last welcome.
    const ChatRequest& history() const noexcept { return history_; }

    /// Sends a close frame (1000) and waits for the server's.
    awaitable<void> close();

    /// Reads the next raw bytes below the WebSocket layer, which would answer
    /// a close frame: a client that never answers the server's close. True if
    /// they start a close frame.
    awaitable<bool> take_close_unanswered();

    std::uint16_t close_code() const noexcept { return close_code_; }
    std::size_t pings_received() const noexcept { return *pings_; }
    Stream& stream() noexcept { return ws_; }

  private:
    Stream ws_;
    std::uint16_t close_code_ = 0;
    std::shared_ptr<std::size_t> pings_;
    std::int64_t last_timestamp_ = 0;
    ChatRequest history_;
};

/// A plain HTTP exchange: status and body of one request with this raw target.
struct HttpAnswer {
    unsigned status = 0;
    std::string body;
    std::string content_type;
    std::string content_length;
};
awaitable<HttpAnswer> http_request(std::uint16_t port, std::string target,
                                   std::string_view method = "GET",
                                   std::string_view upgrade_key = {});

/// The value of the series `name` (labels included, if any) in a /metrics
/// body; fails the test when it is missing.
long metric_value(const std::string& metrics, const std::string& name);
/// Polls the server's /metrics until the series `name` is at least `value`,
/// up to `limit`: how a test sees from outside what the server tells no
/// client (messages written to its store).
awaitable<bool> metric_reaches(std::uint16_t port, std::string name, long value,
                               std::chrono::steady_clock::duration limit = default_timeout);

}  // namespace chat::test
