#include "redis_connection.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <memory_resource>
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

/// The objects of one reply: one XREAD reply holds some five objects an
/// event, which hiredis's own functions allocate and free one by one (a
/// node's reads of a busy cluster spent a sixth of its time there). Here
/// they are carved out of a few growing blocks, freed together with the
/// reply. Small replies fit in the arena's own first block.
class ReplyArena {
  public:
    void* allocate(std::size_t bytes, std::size_t alignment) {
        return memory_.allocate(bytes, alignment);
    }

  private:
    std::array<std::byte, 256> first_{};
    std::pmr::monotonic_buffer_resource memory_{first_.data(), first_.size()};
};

namespace {

/// How often the time limits of the calls in flight are checked.
constexpr std::chrono::milliseconds watch_period{100};

// hiredis's reply objects made in the connection's ReplyArena (its hooks for
// that, redisReplyObjectFunctions, are part of its reader's API): the reader
// passes the arena to each as the task's privdata.
redisReply* make_object(const redisReadTask* task, int type) {
    auto& arena = *static_cast<ReplyArena*>(task->privdata);
    auto* object =
        static_cast<redisReply*>(arena.allocate(sizeof(redisReply), alignof(redisReply)));
    *object = redisReply{};
    object->type = type;
    if (task->parent != nullptr) {
        auto* parent = static_cast<redisReply*>(task->parent->obj);
        parent->element[task->idx] = object;
    }
    return object;
}

void* make_string(const redisReadTask* task, char* text, std::size_t size) {
    auto* object = make_object(task, task->type);  // a string, a status or an error
    auto* copy = static_cast<char*>(
        static_cast<ReplyArena*>(task->privdata)->allocate(size + 1, alignof(char)));
    std::memcpy(copy, text, size);
    copy[size] = '\0';
    object->str = copy;
    object->len = size;
    return object;
}

void* make_array(const redisReadTask* task, int count) {
    auto* object = make_object(task, REDIS_REPLY_ARRAY);
    if (count > 0) {
        const auto size = static_cast<std::size_t>(count);
        auto* element = static_cast<redisReply**>(
            static_cast<ReplyArena*>(task->privdata)
                ->allocate(size * sizeof(redisReply*), alignof(redisReply*)));
        std::fill_n(element, size, nullptr);
        object->element = element;
        object->elements = size;
    }
    return object;
}

void* make_integer(const redisReadTask* task, long long value) {
    auto* object = make_object(task, REDIS_REPLY_INTEGER);
    object->integer = value;
    return object;
}

void* make_nil(const redisReadTask* task) {
    return make_object(task, REDIS_REPLY_NIL);
}

/// Nothing: a reply's objects go with its arena.
void free_object(void* /*object*/) {}

const redisReplyObjectFunctions arena_functions{make_string, make_array, make_integer, make_nil,
                                                free_object};

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
    : strand_(std::move(strand)),
      name_(std::move(name)),
      socket_(strand_),
      reader_(nullptr, redisReaderFree) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::next_arena() {
    arena_ = std::make_shared<ReplyArena>();
    reader_->privdata = arena_.get();
}

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
    // hiredis only reads the functions through the pointer it asks for.
    reader_.reset(redisReaderCreateWithFunctions(
        const_cast<redisReplyObjectFunctions*>(  // NOLINT(cppcoreguidelines-pro-type-const-cast)
            &arena_functions)));
    next_arena();
    // hiredis frees its buffer once empty if it grew past 16 KiB: with an
    // XREAD reply of many events, a large block freed and taken again per
    // call, and glibc merging free blocks each time (malloc_consolidate
    // showed in profiles). Kept up to this size, and freed beyond.
    reader_->maxbuf = std::size_t{1} << 20;
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
        if (redisReaderFeed(reader_.get(), buffer.data(), n) != REDIS_OK) {
            close(asio::error::no_buffer_space);
            co_return;
        }
        for (;;) {
            void* parsed = nullptr;
            if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK) {
                CHAT_LOG(error) << "redis (" << name_ << "): unreadable reply";
                close(asio::error::invalid_argument);
                co_return;
            }
            if (parsed == nullptr) {
                break;  // the rest has not arrived yet
            }
            // The reply keeps its arena; the next one is made in a new one.
            Reply reply(std::move(arena_), static_cast<const redisReply*>(parsed));
            next_arena();
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
