#include "ws_frames.hpp"

#include <boost/asio/write.hpp>

namespace chat::bench {

asio::mutable_buffer FrameReader::room() {
    begin_ += std::exchange(consumed_, 0);
    std::copy(in_.begin() + static_cast<std::ptrdiff_t>(begin_),
              in_.begin() + static_cast<std::ptrdiff_t>(end_), in_.begin());
    end_ -= begin_;
    begin_ = 0;
    // Grown (doubled, from 64 KiB) once less than a read's worth is left.
    if (in_.size() - end_ < std::size_t{4} * 1024) {
        in_.resize(std::max(std::size_t{64} * 1024, 2 * in_.size()));
    }
    return asio::buffer(in_.data() + end_, in_.size() - end_);
}

awaitable<bool> FrameWriter::flush(asio::ip::tcp::socket& socket) {
    while (!out_.empty()) {
        std::swap(out_, wire_);
        out_.clear();
        flushing_ = true;
        auto [ec, n] = co_await asio::async_write(socket, asio::buffer(wire_), use_nothrow);
        flushing_ = false;
        if (ec) {
            co_return false;
        }
    }
    co_return true;
}

}  // namespace chat::bench
