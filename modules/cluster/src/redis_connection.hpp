#pragma once
// One connection to Redis: hiredis formats the commands and parses the
// replies; the I/O, the time limits and the pipelining are ours, on Asio.

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "chat/cluster/redis_address.hpp"
#include "chat/net/asio.hpp"

#include "reply_reader.hpp"

struct redisReply;

namespace chat::cluster {

/// The text of a string, status or error reply ("" for others).
std::string_view text(const redisReply& reply);
/// A reply's elements ({} for a non-array).
std::span<redisReply* const> elements(const redisReply& reply);
bool is_error(const redisReply& reply);
bool is_nil(const redisReply& reply);

/// Commands go out in the order they are sent, pipelined: many may be in
/// flight, and each reply completes the oldest one waiting. Every call has a
/// time limit; a call over it, a failed read or write, or an unparsable reply
/// close the connection, and every call still waiting fails with the reason.
/// Closed, the object stays usable: connect() again. All on one strand.
class RedisConnection {
  public:
    using Callback = std::function<void(error_code, Reply)>;

    RedisConnection(asio::any_io_executor strand, std::string name);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    /// Connects, then authenticates and selects the database the address names,
    /// all within `limit`.
    awaitable<error_code> connect(const RedisAddress& address, std::chrono::milliseconds limit);

    /// Sends one command; `done` is called (posted to the strand) with its reply,
    /// or with an error. A Redis error reply is a reply, not an error.
    void send(const std::vector<std::string>& args, std::chrono::milliseconds limit, Callback done);

    /// send() as a coroutine.
    awaitable<std::pair<error_code, Reply>> call(const std::vector<std::string>& args,
                                                 std::chrono::milliseconds limit);

    /// Fails every call waiting with `reason`. Idempotent.
    void close(error_code reason = asio::error::operation_aborted);

    bool is_open() const noexcept { return open_; }
    /// Why it was last closed.
    error_code last_error() const noexcept { return last_error_; }

  private:
    struct Waiting {
        std::chrono::steady_clock::time_point deadline;
        Callback done;
    };
    awaitable<void> read_loop(std::uint64_t generation);
    awaitable<void> write_loop(std::uint64_t generation);
    awaitable<void> watch(std::uint64_t generation);
    void complete(Waiting waiting, error_code ec, Reply reply);

    asio::any_io_executor strand_;
    std::string name_;  // for the log, and its name in Redis (CLIENT SETNAME)
    asio::ip::tcp::socket socket_;
    std::unique_ptr<ReplyReader> reader_;  // one per connect(): a new stream of replies
    std::deque<Waiting> waiting_;
    std::string outgoing_;
    bool open_ = false;
    bool writing_ = false;          // a write loop runs
    std::uint64_t generation_ = 0;  // one per connect(): old loops know they are done
    error_code last_error_;
};

}  // namespace chat::cluster
