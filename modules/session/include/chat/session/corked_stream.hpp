#pragma once
// A write-batching layer under Beast's WebSocket stream: several whole
// WebSocket frames leave in one system call.

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "chat/net/asio.hpp"

namespace chat::session {

/// Beast's websocket::stream::async_write sends each message with its own
/// system call, and a system call costs more than everything else a delivery
/// does. A batch: cork(first) names the payload of the batch's first frame;
/// the write that carries it and the synchronous writes after it are only
/// appended to a buffer (completing through a post, never inline, as Beast
/// requires), and async_flush() writes them all at once. Beast keeps doing
/// the framing and the control frames, and those are never held in a batch:
/// a ping, pong or close frame goes straight through, or, while batch bytes
/// are waiting or on the wire, right after them, completing only once it has
/// left. So nothing interleaves, and a teardown that follows Beast's close
/// frame cannot cut that frame off.
///
/// One writer at a time corks and flushes, on the stream's strand.
template <typename NextLayer>
class CorkedStream {
  public:
    using executor_type = typename NextLayer::executor_type;

    template <typename... Args>
    explicit CorkedStream(Args&&... args)
        : next_(std::forward<Args>(args)...), flushed_(next_.get_executor()) {}

    executor_type get_executor() noexcept { return next_.get_executor(); }
    NextLayer& next_layer() noexcept { return next_; }
    const NextLayer& next_layer() const noexcept { return next_; }

    /// Starts a batch whose first frame carries `first_payload`.
    void cork(asio::const_buffer first_payload) noexcept {
        batch_payload_ = first_payload.data();
        corked_ = true;
    }

    /// Ends the batch and writes everything appended; completes with void(error_code).
    template <typename FlushToken>
    auto async_flush(FlushToken&& token) {
        corked_ = false;
        batch_payload_ = nullptr;
        flushing_ = true;
        return asio::async_compose<FlushToken, void(error_code)>(FlushOp{*this}, token, next_);
    }

    template <typename MutableBufferSequence, typename ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
        return next_.async_read_some(buffers, std::forward<ReadToken>(token));
    }

    template <typename ConstBufferSequence, typename WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
        return asio::async_initiate<WriteToken, void(error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& data) {
                if (corked_ && carries_batch_payload(data)) {
                    const auto size = append(data);
                    const auto executor = asio::get_associated_executor(handler, get_executor());
                    asio::post(executor, asio::append(std::move(handler), error_code{}, size));
                    return;
                }
                if (!flushing_ && pending_.empty()) {
                    next_.async_write_some(data, std::move(handler));
                    return;
                }
                // Batch bytes are waiting or on the wire: this one goes after
                // them, and completes when it has left. The wait is a timer's,
                // so that a shutdown destroys it like any pending operation.
                const auto size = append(data);
                const auto executor = asio::get_associated_executor(handler, get_executor());
                flushed_.expires_at(asio::steady_timer::time_point::max());
                flushed_.async_wait(
                    asio::bind_executor(executor, [handler = std::move(handler), size,
                                                   result = flush_result_](error_code) mutable {
                        std::move(handler)(*result, *result ? 0 : size);
                    }));
            },
            token, buffers);
    }

    // Synchronous forms, for Beast's synchronous write of the batch's other
    // frames: only appended, so nothing blocks. Outside a batch they would
    // block the strand; the session never does that.
    template <typename ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
        ec = {};
        if (!corked_ && !flushing_) {
            return next_.write_some(buffers, ec);
        }
        return append(buffers);
    }
    template <typename ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers) {
        error_code ec;
        const auto n = write_some(buffers, ec);
        if (ec) {
            throw boost::system::system_error(ec);
        }
        return n;
    }
    template <typename MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
        return next_.read_some(buffers, ec);
    }
    template <typename MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers) {
        return next_.read_some(buffers);
    }

  private:
    /// Beast writes a frame as its header followed by the caller's payload.
    template <typename ConstBufferSequence>
    bool carries_batch_payload(const ConstBufferSequence& data) const {
        for (auto it = asio::buffer_sequence_begin(data); it != asio::buffer_sequence_end(data);
             ++it) {
            if (asio::const_buffer(*it).data() == batch_payload_) {
                return true;
            }
        }
        return false;
    }

    template <typename ConstBufferSequence>
    std::size_t append(const ConstBufferSequence& data) {
        const auto size = asio::buffer_size(data);
        const auto old_size = pending_.size();
        pending_.resize(old_size + size);
        asio::buffer_copy(asio::buffer(pending_.data() + old_size, size), data);
        return size;
    }

    // A named class, not a lambda with a member template: clang 14 rejects
    // those in local classes (toolchain.md).
    struct FlushOp {
        CorkedStream& stream;

        template <typename Self>
        void operator()(Self& self, error_code ec = {}, std::size_t = 0) {
            auto& s = stream;
            s.writing_.clear();
            if (ec || s.pending_.empty()) {
                s.pending_.clear();  // after an error nothing more can leave
                s.flushing_ = false;
                s.release_if_large();
                *s.flush_result_ = ec;
                s.flushed_.cancel();  // completes a write waiting for this flush
                self.complete(ec);
                return;
            }
            std::swap(s.writing_, s.pending_);  // what arrives meanwhile waits its turn
            asio::async_write(s.next_, asio::buffer(s.writing_), std::move(self));
        }
    };

    /// A batch of large frames must not pin its memory on an idle connection.
    void release_if_large() {
        constexpr std::size_t kept = std::size_t{16} * 1024;
        if (pending_.capacity() > kept) {
            std::vector<char>().swap(pending_);
        }
        if (writing_.capacity() > kept) {
            std::vector<char>().swap(writing_);
        }
    }

    NextLayer next_;
    std::vector<char> pending_;  // appended, not yet on the wire
    std::vector<char> writing_;  // on the wire now
    const void* batch_payload_ = nullptr;
    bool corked_ = false;
    bool flushing_ = false;
    // A write that came during a flush waits on this (Beast writes one
    // message at a time, so one at most), and gets the flush's result.
    asio::steady_timer flushed_;
    std::shared_ptr<error_code> flush_result_ = std::make_shared<error_code>();
};

// Beast closes a WebSocket stream through these, found by ADL.
template <typename NextLayer, typename TeardownHandler>
void async_teardown(boost::beast::role_type role, CorkedStream<NextLayer>& stream,
                    TeardownHandler&& handler) {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

template <typename NextLayer>
void teardown(boost::beast::role_type role, CorkedStream<NextLayer>& stream, error_code& ec) {
    using boost::beast::websocket::teardown;
    teardown(role, stream.next_layer(), ec);
}

}  // namespace chat::session
