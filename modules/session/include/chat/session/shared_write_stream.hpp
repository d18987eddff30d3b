#pragma once
// The layer under Beast's WebSocket stream through which every byte leaves:
// Beast's own frames and the session's batches of ready-made frames, one
// after the other, never interleaved.

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "chat/net/asio.hpp"

namespace chat::session {

/// Beast's websocket::stream::async_write frames each message and sends it
/// with its own asynchronous operation and system call, which costs far more
/// than the rest of a delivery. So the session frames its messages itself
/// (they are serialised once and shared by all recipients) and hands this
/// layer a whole batch, which write_now() gives the socket at once, in as few
/// system calls as the socket takes, without an asynchronous operation when
/// the socket has room (the usual case). Beast keeps the reading, the
/// handshakes and the control frames (ping, pong, close); its writes come
/// through async_write_some() here.
///
/// Nothing interleaves: a write that finds another on the wire (the rest of a
/// batch the socket did not take, or a frame of Beast's) is copied and leaves
/// right after it, and Beast's write completes only once its bytes have left,
/// so a teardown that follows Beast's close frame cannot cut that frame off.
///
/// The next layer's write_some must not block (a socket in non-blocking mode).
/// Used on one strand.
template <typename NextLayer>
class SharedWriteStream {
  public:
    using executor_type = typename NextLayer::executor_type;

    template <typename... Args>
    explicit SharedWriteStream(Args&&... args) : next_(std::forward<Args>(args)...) {}

    executor_type get_executor() noexcept { return next_.get_executor(); }
    NextLayer& next_layer() noexcept { return next_; }
    const NextLayer& next_layer() const noexcept { return next_; }

    /// Writes `buffers` (whole frames) now, as far as the socket takes them.
    /// What it does not take, or all of it if another write is on the wire,
    /// is copied and leaves after that. Returns true if everything has left;
    /// false if some waits: async_wait_written() then tells when it has.
    template <typename ConstBufferSequence>
    bool write_now(const ConstBufferSequence& buffers) {
        if (result_) {
            return false;  // broken: the wait reports why
        }
        auto left = asio::buffer_size(buffers);
        if (left == 0) {
            return true;
        }
        boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
        if (!draining_) {
            for (;;) {
                error_code ec;
                const auto n = next_.write_some(rest, ec);
                if (ec == asio::error::would_block || ec == asio::error::try_again) {
                    break;
                }
                if (ec) {
                    result_ = ec;  // broken: the wait reports it
                    return false;
                }
                rest.consume(n);
                left -= n;
                if (left == 0) {
                    return true;
                }
            }
        }
        append(rest);
        drain();
        return false;
    }

    /// Completes with void(error_code) once everything given so far has left,
    /// or with the error that broke the stream.
    template <typename WaitToken>
    auto async_wait_written(WaitToken&& token) {
        return asio::async_initiate<WaitToken, void(error_code)>(
            [this](auto handler) {
                const auto executor = asio::get_associated_executor(handler, get_executor());
                const auto allocator = asio::get_associated_allocator(handler);
                auto written = [handler = std::move(handler)](error_code ec, std::size_t) mutable {
                    std::move(handler)(ec);
                };
                this->wait(asio::bind_allocator(allocator,
                                                asio::bind_executor(executor, std::move(written))),
                           0);
            },
            token);
    }

    // Beast's writes: copied, and complete once they have left.
    template <typename ConstBufferSequence, typename WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
        return asio::async_initiate<WriteToken, void(error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& data) {
                const auto size = asio::buffer_size(data);
                if (!result_) {
                    append(data);
                    drain();
                }
                wait(std::move(handler), size);
            },
            token, buffers);
    }

    template <typename MutableBufferSequence, typename ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
        return next_.async_read_some(buffers, std::forward<ReadToken>(token));
    }

  private:
    template <typename ConstBufferSequence>
    void append(const ConstBufferSequence& data) {
        const auto size = asio::buffer_size(data);
        const auto old_size = pending_.size();
        pending_.resize(old_size + size);
        asio::buffer_copy(asio::buffer(pending_.data() + old_size, size), data);
    }

    /// Writes what is pending, and what is appended meanwhile, then wakes the waiters.
    void drain() {
        if (draining_ || pending_.empty()) {
            return;
        }
        draining_ = true;
        std::swap(writing_, pending_);
        asio::async_write(next_, asio::buffer(writing_), [this](error_code ec, std::size_t) {
            writing_.clear();
            if (ec) {
                result_ = ec;
                pending_.clear();  // nothing more can leave
            }
            draining_ = false;
            if (!pending_.empty()) {
                drain();
                return;
            }
            release();
            if (drained_) {
                drained_->cancel();  // wakes every waiter; they hold nothing of it
                drained_.reset();
            }
        });
    }

    /// Calls handler(result, size) once nothing is pending or on the wire:
    /// never inline, as asynchronous operations must not complete. The wait
    /// is allocated with the handler's allocator. (A post through the
    /// type-erased executor ignores it: that path is taken only when nothing
    /// is on the wire, a broken stream's or an empty write's.)
    template <typename Handler>
    void wait(Handler handler, std::size_t size) {
        const auto executor = asio::get_associated_executor(handler, get_executor());
        if (!draining_) {
            asio::post(executor, asio::append(std::move(handler), result_, result_ ? 0 : size));
            return;
        }
        // The timer completes only through drain()'s cancel(); `this` outlives
        // it, since destroying the timer destroys the waits without calling them.
        if (!drained_) {
            // Made for a drain that has waiters, and gone after it: an idle
            // connection keeps no timer here (docs/architecture.md, memory
            // per idle connection).
            drained_ = std::make_unique<asio::steady_timer>(next_.get_executor(),
                                                            asio::steady_timer::time_point::max());
        }
        const auto allocator = asio::get_associated_allocator(handler);
        auto drained = [this, handler = std::move(handler), size](error_code) mutable {
            std::move(handler)(result_, result_ ? 0 : size);
        };
        drained_->async_wait(
            asio::bind_allocator(allocator, asio::bind_executor(executor, std::move(drained))));
    }

    /// Nothing is kept for the next time: copies are the exception (Beast's
    /// control frames, a full socket), and an idle connection should cost
    /// little (docs/architecture.md, memory per idle connection).
    void release() {
        std::vector<char>().swap(pending_);
        std::vector<char>().swap(writing_);
    }

    NextLayer next_;
    std::vector<char> pending_;  // waiting for the write on the wire
    std::vector<char> writing_;  // on the wire now
    bool draining_ = false;
    error_code result_;                            // the first write error: the stream is broken
    std::unique_ptr<asio::steady_timer> drained_;  // waits for the drain to end
};

// Beast closes a WebSocket stream through these, found by ADL.
template <typename NextLayer, typename TeardownHandler>
void async_teardown(boost::beast::role_type role, SharedWriteStream<NextLayer>& stream,
                    TeardownHandler&& handler) {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

template <typename NextLayer>
void teardown(boost::beast::role_type role, SharedWriteStream<NextLayer>& stream, error_code& ec) {
    using boost::beast::websocket::teardown;
    teardown(role, stream.next_layer(), ec);
}

}  // namespace chat::session
