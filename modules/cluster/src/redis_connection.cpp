#include "redis_connection.hpp"

#include <array>
#include <utility>

#include <hiredis/hiredis.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "chat/logging/log.hpp"

namespace chat::cluster {

using namespace asio::experimental::awaitable_operators;

namespace {

/// How often the time limits of the calls in flight are checked.
constexpr std::chrono::milliseconds watch_period{100};

}  // namespace

std::string_view text(const redisReply& reply) {
    switch (reply.type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR:
            return {reply.str, reply.len};
        default:
            return {};
    }
}

std::span<redisReply* const> elements(const redisReply& reply) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.element == nullptr) {
        return {};
    }
    return {reply.element, reply.elements};
}

bool is_error(const redisReply& reply) {
    return reply.type == REDIS_REPLY_ERROR;
}

bool is_nil(const redisReply& reply) {
    return reply.type == REDIS_REPLY_NIL;
}

RedisConnection::RedisConnection(asio::any_io_executor strand, std::string name)
    : strand_(std::move(strand)), name_(std::move(name)), socket_(strand_) {}

RedisConnection::~RedisConnection() = default;

awaitable<error_code> RedisConnection::connect(const RedisAddress& address,
                                               std::chrono::milliseconds limit) {
    close();
    const auto generation = ++generation_;
    asio::ip::tcp::resolver resolver(strand_);
    asio::steady_timer timer(strand_);
    timer.expires_after(limit);
    auto outcome = co_await (resolver.async_resolve(address.host, address.port, use_nothrow) ||
                             timer.async_wait(use_nothrow));
    if (outcome.index() == 1) {
        co_return asio::error::timed_out;
    }
    auto [resolve_error, endpoints] = std::get<0>(outcome);
    if (resolve_error) {
        co_return resolve_error;
    }
    asio::ip::tcp::socket socket(strand_);
    auto connected = co_await (asio::async_connect(socket, endpoints, use_nothrow) ||
                               timer.async_wait(use_nothrow));
    if (connected.index() == 1) {
        co_return asio::error::timed_out;
    }
    if (auto [ec, endpoint] = std::get<0>(connected); ec) {
        co_return ec;
    }
    if (generation != generation_) {
        co_return asio::error::operation_aborted;  // closed or reconnected meanwhile
    }
    socket.set_option(asio::ip::tcp::no_delay(true));
    socket_ = std::move(socket);
    reader_ = std::make_unique<ReplyReader>();
    open_ = true;
    last_error_ = {};
    asio::co_spawn(strand_, read_loop(generation), asio::detached);
    asio::co_spawn(strand_, watch(generation), asio::detached);

    std::vector<std::vector<std::string>> greetings;
    if (!address.password.empty()) {
        greetings.push_back(address.user.empty()
                                ? std::vector<std::string>{"AUTH", address.password}
                                : std::vector<std::string>{"AUTH", address.user, address.password});
    }
    if (address.database != 0) {
        greetings.push_back({"SELECT", std::to_string(address.database)});
    }
    // Named, so that an operator tells the node's connections apart in
    // CLIENT LIST (and can cut one). Only a help: a Redis that refuses it
    // (CLIENT renamed, an ACL without it) is used all the same.
    greetings.push_back({"CLIENT", "SETNAME", name_});
    for (const auto& greeting : greetings) {
        auto [ec, reply] = co_await call(greeting, limit);
        if (ec) {
            co_return ec;
        }
        if (is_error(*reply) && greeting.front() == "CLIENT") {
            CHAT_LOG(warning) << "redis (" << name_ << "): CLIENT SETNAME refused (" << text(*reply)
                              << "); the connection stays unnamed";
        } else if (is_error(*reply)) {
            CHAT_LOG(error) << "redis (" << name_ << "): " << greeting.front()
                            << " refused: " << text(*reply);
            close(asio::error::access_denied);
            co_return asio::error::access_denied;
        }
    }
    co_return error_code{};
}

void RedisConnection::send(const std::vector<std::string>& args, std::chrono::milliseconds limit,
                           Callback done) {
    if (!open_) {
        asio::post(strand_, [done = std::move(done), ec = last_error_] {
            done(ec ? ec : asio::error::not_connected, nullptr);
        });
        return;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    char* command = nullptr;
    const int length = redisFormatCommandArgv(&command, static_cast<int>(args.size()), argv.data(),
                                              lengths.data());
    if (length < 0) {
        asio::post(strand_, [done = std::move(done)] { done(asio::error::no_memory, nullptr); });
        return;
    }
    outgoing_.append(command, static_cast<std::size_t>(length));
    redisFreeCommand(command);
    waiting_.push_back({std::chrono::steady_clock::now() + limit, std::move(done)});
    if (!writing_) {
        writing_ = true;
        asio::co_spawn(strand_, write_loop(generation_), asio::detached);
    }
}

awaitable<std::pair<error_code, Reply>> RedisConnection::call(const std::vector<std::string>& args,
                                                              std::chrono::milliseconds limit) {
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                            void(std::pair<error_code, Reply>)>(
        [this, &args, limit](auto handler) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            send(args, limit, [shared](error_code ec, Reply reply) {
                (*shared)(std::pair{ec, std::move(reply)});
            });
        },
        asio::use_awaitable);
}

awaitable<void> RedisConnection::write_loop(std::uint64_t generation) {
    // One loop per connection at a time: started by the send that finds none
    // running, it writes whatever gathered meanwhile in one go.
    std::string writing;
    while (generation == generation_ && !outgoing_.empty()) {
        writing.clear();
        std::swap(writing, outgoing_);
        auto [ec, written] =
            co_await asio::async_write(socket_, asio::buffer(writing), use_nothrow);
        if (generation != generation_) {
            co_return;
        }
        if (ec) {
            close(ec);
            co_return;
        }
    }
    if (generation == generation_) {
        writing_ = false;
    }
}

awaitable<void> RedisConnection::read_loop(std::uint64_t generation) {
    std::array<char, std::size_t{16} * 1024> buffer{};
    for (;;) {
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), use_nothrow);
        if (generation != generation_) {
            co_return;
        }
        if (ec) {
            close(ec);
            co_return;
        }
        if (!reader_->feed({buffer.data(), n})) {
            close(asio::error::no_buffer_space);
            co_return;
        }
        for (;;) {
            Reply reply;
            if (!reader_->next(reply)) {
                CHAT_LOG(error) << "redis (" << name_ << "): unreadable reply";
                close(asio::error::invalid_argument);
                co_return;
            }
            if (!reply) {
                break;  // the rest has not arrived yet
            }
            if (waiting_.empty()) {
                CHAT_LOG(error) << "redis (" << name_ << "): a reply nobody asked for";
                close(asio::error::invalid_argument);
                co_return;
            }
            auto waiting = std::move(waiting_.front());
            waiting_.pop_front();
            complete(std::move(waiting), {}, std::move(reply));
        }
    }
}

awaitable<void> RedisConnection::watch(std::uint64_t generation) {
    asio::steady_timer timer(strand_);
    while (generation == generation_) {
        timer.expires_after(watch_period);
        co_await timer.async_wait(use_nothrow);
        if (generation != generation_) {
            co_return;
        }
        const auto now = std::chrono::steady_clock::now();
        for (const auto& waiting : waiting_) {
            if (waiting.deadline < now) {
                CHAT_LOG(debug) << "redis (" << name_ << "): a call took too long";
                close(asio::error::timed_out);
                co_return;
            }
        }
    }
}

void RedisConnection::complete(Waiting waiting, error_code ec, Reply reply) {
    // Posted: the caller may send or close from its callback.
    asio::post(strand_,
               [done = std::move(waiting.done), ec, reply = std::move(reply)] { done(ec, reply); });
}

void RedisConnection::close(error_code reason) {
    if (!open_ && waiting_.empty()) {
        return;
    }
    ++generation_;
    open_ = false;
    last_error_ = reason;
    error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    outgoing_.clear();
    writing_ = false;  // a loop of the old generation ends without writing
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& call : waiting) {
        complete(std::move(call), reason, nullptr);
    }
}

}  // namespace chat::cluster
