// chat_bench: a load generator for the chat service, speaking only the wire
// contract (docs/protocol.md). It logs N clients in, has K of them send, and
// measures deliveries per second, loss and end-to-end latency, with the
// server's CPU time per delivery when given the server's pid. --idle instead
// holds N logged-in connections and reports the server's memory per connection.

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "chat/chat.pb.h"
#include "chat/net/asio.hpp"
#include "chat/net/file_limit.hpp"
#include "clock.hpp"
#include "histogram.hpp"
#include "options.hpp"
#include "proc_sampler.hpp"
#include "run_state.hpp"
#include "wire.hpp"

namespace chat::bench {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using namespace std::chrono_literals;

class Client : public std::enable_shared_from_this<Client> {
  public:
    Client(RunState& run, asio::any_io_executor strand, int index)
        : run_(run),
          ws_(strand),
          wake_(strand),
          index_(index),
          name_("b" + std::to_string(getpid()) + "-" + std::to_string(index)) {}

    /// Connects and logs in; false on failure.
    awaitable<bool> start() {
        const auto& o = run_.options;
        auto& tcp_layer = beast::get_lowest_layer(ws_);
        tcp_layer.expires_after(30s);
        error_code ec;
        tcp::resolver resolver(ws_.get_executor());
        const auto& server = o.server_for(index_);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        if (rec) {
            co_return false;
        }
        // One loopback address has about 28,000 ephemeral ports; spread beyond.
        auto& socket = tcp_layer.socket();
        const auto endpoint = *endpoints.begin();
        if (o.clients > 20'000 && endpoint.endpoint().address().is_loopback()) {
            socket.open(tcp::v4());
            const auto source = asio::ip::make_address_v4(
                static_cast<asio::ip::address_v4::uint_type>((127u << 24) + 2 + index_ / 20'000));
            socket.bind(tcp::endpoint(source, 0), ec);
        }
        if (auto [cec, connected] = co_await tcp_layer.async_connect(endpoints, use_nothrow); cec) {
            co_return false;
        }
        if (auto [hec] = co_await ws_.async_handshake(server.host, server.path, use_nothrow); hec) {
            co_return false;
        }
        tcp_layer.expires_never();
        ws_.binary(true);
        ChatRequest login;
        login.set_type("login");
        login.set_user_name(name_);
        const auto bytes = login.SerializeAsString();
        if (auto [wec, n] = co_await ws_.async_write(asio::buffer(bytes), use_nothrow); wec) {
            co_return false;
        }
        // The first frame for a newcomer is its welcome.
        tcp_layer.expires_after(30s);
        const auto welcome = co_await next_message();
        tcp_layer.expires_never();
        if (!welcome) {
            co_return false;
        }
        const auto view = scan(*welcome);
        co_return view && view->type == "login" && view->user_name == name_;
    }

    awaitable<void> read_loop() {
        const auto self = shared_from_this();
        auto& histogram = run_.thread_histogram();
        while (const auto message = co_await next_message()) {
            if (const auto view = scan(*message)) {
                on_frame(*view, histogram);
            }
        }
        if (!run_.phase.closing.load()) {
            run_.closed(close_code_);
        }
        closed_ = true;
        wake_.cancel();
    }

    /// Sends messages: paced at --rate, or (rate 0) keeping --window of its own
    /// in flight. All the messages due at once leave in one write of masked
    /// frames straight onto the socket, as a browser's would one by one: a
    /// Beast write per message would cost the load generator an asynchronous
    /// operation each and make it, not the server, the bottleneck.
    awaitable<void> send_loop() {
        const auto self = shared_from_this();
        const auto& o = run_.options;
        const auto interval =
            o.rate > 0 ? std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / o.rate))
                       : std::chrono::nanoseconds(0);
        auto next = Clock::now();
        if (o.rate > 0 && !o.aligned) {
            // Independent users: each sender's first message comes at its own
            // point of the first interval, so that messages arrive spread out,
            // not all senders' at once.
            std::mt19937_64 random(static_cast<std::uint64_t>(index_));
            next += std::chrono::nanoseconds(
                std::uniform_int_distribution<std::int64_t>(0, interval.count() - 1)(random));
        }
        sender_ = true;
        std::string content;
        ChatRequest message;
        message.set_type("message");
        while (run_.phase.sending.load(std::memory_order_relaxed) && !closed_) {
            int due = 0;
            if (o.rate > 0) {
                if (Clock::now() < next) {
                    wake_.expires_at(next);
                    co_await wake_.async_wait(use_nothrow);  // a pong to send cancels it
                } else {
                    due = 1;
                    next += interval;
                }
            } else if (in_flight_ >= o.window) {
                wake_.expires_at(Clock::time_point::max());
                co_await wake_.async_wait(use_nothrow);  // an ack or a pong to send cancels it
            } else {
                due = o.window - in_flight_;
            }
            if (!run_.phase.sending.load(std::memory_order_relaxed) || closed_) {
                break;
            }
            const auto sent_at = now_ns();
            for (int i = 0; i < due; ++i) {
                content = std::to_string(index_) + ":" + std::to_string(sent_at) + ";";
                if (static_cast<int>(content.size()) < o.size) {
                    content.resize(static_cast<std::size_t>(o.size), 'x');
                }
                message.set_content(content);
                append_frame(0x2, message.SerializeAsString());
            }
            in_flight_ += due;
            if (!co_await flush()) {
                break;
            }
            run_.traffic.sent_total.fetch_add(static_cast<std::uint64_t>(due),
                                              std::memory_order_relaxed);
            if (run_.phase.in_window(sent_at)) {
                run_.traffic.sent_in_window.fetch_add(static_cast<std::uint64_t>(due),
                                                      std::memory_order_relaxed);
            }
        }
    }

    asio::any_io_executor executor() { return ws_.get_executor(); }

    /// --ack all: every client has a message of client `sender`.
    void acknowledge(int sender) const {
        const auto& all = *run_.ack_all.clients;
        if (sender >= 0 && static_cast<std::size_t>(sender) < all.size() &&
            all[static_cast<std::size_t>(sender)]) {
            all[static_cast<std::size_t>(sender)]->acknowledged();
        }
    }

    /// --ack all: every client has one of this sender's messages.
    void acknowledged() {
        asio::post(ws_.get_executor(), [self = shared_from_this()] {
            if (self->in_flight_ > 0) {
                --self->in_flight_;
            }
            self->wake_.cancel();
        });
    }

    /// Wakes a sender waiting for acks, to see that sending is over.
    void stop_sending() {
        asio::post(ws_.get_executor(), [self = shared_from_this()] { self->wake_.cancel(); });
    }

    awaitable<void> close() {
        const auto self = shared_from_this();
        while (flushing_) {  // Beast's close frame must not land inside our write
            co_await asio::post(ws_.get_executor(), asio::use_awaitable);
        }
        beast::get_lowest_layer(ws_).expires_after(5s);
        co_await ws_.async_close(websocket::close_code::normal, use_nothrow);
    }

  private:
    /// The next data message, read straight off the socket: one system call
    /// brings many frames, and none costs an asynchronous operation of its own
    /// (RFC 6455 framing; the server's frames are not masked). Pings are
    /// answered with pongs. nullopt once the connection has ended (close_code_).
    /// The view stays valid until the next call.
    awaitable<std::optional<std::string_view>> next_message() {
        auto& socket = beast::get_lowest_layer(ws_).socket();
        message_.clear();
        for (;;) {
            begin_ += std::exchange(consumed_, 0);  // what the previous message used
            if (const auto frame = parse_frame()) {
                const auto [fin, opcode, payload] = *frame;
                if (opcode == 0x8) {  // close
                    close_code_ = payload.size() >= 2
                                      ? (static_cast<unsigned char>(payload[0]) << 8) |
                                            static_cast<unsigned char>(payload[1])
                                      : 1005;
                    co_return std::nullopt;
                }
                if (opcode == 0x9) {  // ping
                    const auto echoed = payload.substr(0, 125);
                    if (sender_) {
                        // Our own writes go straight onto the socket: the pong
                        // goes with them, never in the middle of one.
                        append_frame(0xA, echoed);
                        consumed_ = frame_size_;
                        wake_.cancel();
                        continue;
                    }
                    const websocket::ping_data data(echoed.data(), echoed.size());
                    consumed_ = frame_size_;
                    co_await ws_.async_pong(data, use_nothrow);
                    continue;
                }
                if (opcode == 0xA) {
                    consumed_ = frame_size_;
                    continue;
                }
                if (fin && message_.empty()) {
                    consumed_ = frame_size_;
                    co_return payload;  // the common case: no copy
                }
                message_.append(payload);
                consumed_ = frame_size_;
                if (fin) {
                    co_return std::string_view(message_);
                }
                continue;
            }
            // Need more: the unparsed tail goes to the front, and the read
            // goes after it, into room the buffer has (not zero-filled again
            // for each read: that cost more than the read itself).
            std::copy(in_.begin() + static_cast<std::ptrdiff_t>(begin_),
                      in_.begin() + static_cast<std::ptrdiff_t>(end_), in_.begin());
            end_ -= begin_;
            begin_ = 0;
            if (in_.size() - end_ < std::size_t{4} * 1024) {
                in_.resize(std::max(std::size_t{64} * 1024, 2 * in_.size()));
            }
            auto [ec, n] = co_await socket.async_read_some(
                asio::buffer(in_.data() + end_, in_.size() - end_), use_nothrow);
            end_ += n;
            if (ec) {
                close_code_ = 1006;
                co_return std::nullopt;
            }
        }
    }

    /// A client's frame (RFC 6455, 5.2-5.3: always masked) at the end of out_.
    void append_frame(int opcode, std::string_view payload) {
        out_.push_back(static_cast<char>(0x80 | opcode));
        const auto size = payload.size();
        if (size < 126) {
            out_.push_back(static_cast<char>(0x80 | size));
        } else if (size <= 0xFFFF) {
            out_.push_back(static_cast<char>(0x80 | 126));
            out_.push_back(static_cast<char>(size >> 8));
            out_.push_back(static_cast<char>(size & 0xFF));
        } else {
            out_.push_back(static_cast<char>(0x80 | 127));
            for (int shift = 56; shift >= 0; shift -= 8) {
                out_.push_back(
                    static_cast<char>((static_cast<std::uint64_t>(size) >> shift) & 0xFF));
            }
        }
        mask_state_ ^= mask_state_ << 13;  // xorshift32: a fresh key per frame
        mask_state_ ^= mask_state_ >> 17;
        mask_state_ ^= mask_state_ << 5;
        const std::array<char, 4> key{
            static_cast<char>(mask_state_), static_cast<char>(mask_state_ >> 8),
            static_cast<char>(mask_state_ >> 16), static_cast<char>(mask_state_ >> 24)};
        out_.append(key.data(), key.size());
        const auto start = out_.size();
        out_.append(payload);
        for (std::size_t i = 0; i < size; ++i) {
            out_[start + i] = static_cast<char>(out_[start + i] ^ key[i % 4]);
        }
    }

    /// Writes out_ (and what is appended meanwhile); false if the connection broke.
    awaitable<bool> flush() {
        while (!out_.empty()) {
            std::swap(out_, wire_);
            out_.clear();
            flushing_ = true;
            auto [ec, n] = co_await asio::async_write(beast::get_lowest_layer(ws_).socket(),
                                                      asio::buffer(wire_), use_nothrow);
            flushing_ = false;
            if (ec) {
                co_return false;
            }
        }
        co_return true;
    }

    struct Frame {
        bool fin;
        int opcode;
        std::string_view payload;
    };
    /// The frame at the start of in_, if it is all there; sets frame_size_.
    std::optional<Frame> parse_frame() {
        const auto size = end_ - begin_;
        if (size < 2) {
            return std::nullopt;
        }
        const char* const data = in_.data() + begin_;
        const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(data[i]); };
        std::size_t header = 2;
        std::uint64_t length = byte(1) & 0x7F;
        if (length == 126) {
            header = 4;
            if (size < header)
                return std::nullopt;
            length = (std::uint64_t{byte(2)} << 8) | byte(3);
        } else if (length == 127) {
            header = 10;
            if (size < header)
                return std::nullopt;
            length = 0;
            for (std::size_t i = 2; i < 10; ++i) {
                length = (length << 8) | byte(i);
            }
        }
        if (size < header + length) {
            return std::nullopt;
        }
        frame_size_ = header + static_cast<std::size_t>(length);
        return Frame{(byte(0) & 0x80) != 0, byte(0) & 0x0F,
                     std::string_view(data + header, static_cast<std::size_t>(length))};
    }

    void on_frame(const FrameView& view, Histogram& histogram) {
        if (view.type == "error") {
            run_.traffic.errors.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (view.type != "message") {
            return;
        }
        if (last_id_ != 0 && view.id != last_id_ + 1) {
            run_.traffic.gaps.fetch_add(1, std::memory_order_relaxed);
        }
        last_id_ = view.id;
        if (run_.options.history_flooders > 0) {
            raise_to(run_.history.highest_id_seen, view.id);
        }
        // content: "<sender index>:<send ns>;" and padding
        const auto colon = view.content.find(':');
        const auto semicolon = view.content.find(';');
        if (colon == std::string_view::npos || semicolon == std::string_view::npos) {
            return;
        }
        int sender = -1;
        std::int64_t sent_at = 0;
        std::from_chars(view.content.data(), view.content.data() + colon, sender);
        std::from_chars(view.content.data() + colon + 1, view.content.data() + semicolon, sent_at);
        run_.traffic.delivered_total.fetch_add(1, std::memory_order_relaxed);
        if (run_.phase.in_window(sent_at)) {
            run_.traffic.delivered_in_window.fetch_add(1, std::memory_order_relaxed);
            histogram.record(static_cast<std::uint64_t>((now_ns() - sent_at) / 1000));  // µs
        }
        if (run_.options.ack_all) {
            auto& receipts = run_.ack_all.receipts[view.id % RunState::AckAll::slots];
            if (receipts.fetch_add(1) + 1 == run_.logins.connected.load()) {
                receipts = 0;  // every client has it: the slot is free again
                acknowledge(sender);
            }
            return;
        }
        if (sender == index_ && in_flight_ > 0) {
            --in_flight_;
            if (run_.options.rate <= 0) {
                wake_.cancel();  // window mode: room for one more; paced senders keep their pace
            }
        }
    }

    RunState& run_;
    websocket::stream<beast::tcp_stream> ws_;
    asio::steady_timer wake_;
    int index_;
    std::string name_;
    int in_flight_ = 0;
    bool closed_ = false;
    std::vector<char> in_;      // bytes read, not yet parsed, up to end_; then room
    std::size_t begin_ = 0;     // where the unparsed bytes of in_ start
    std::size_t end_ = 0;       // where they end
    std::size_t consumed_ = 0;  // bytes the last message used, from begin_
    std::size_t frame_size_ = 0;
    std::string message_;  // a fragmented message being put together
    bool sender_ = false;  // writes its own frames (send_loop), pongs included
    std::string out_;      // frames to write
    std::string wire_;     // frames being written
    bool flushing_ = false;
    std::uint32_t mask_state_ = 0x9E3779B9u;
    int close_code_ = 0;
    std::uint64_t last_id_ = 0;
};

struct Report {
    double login_seconds = 0;
    double storm_back_seconds = -1;     // first close to the last client back
    double storm_settled_seconds = -1;  // first close to the last notice
    double window_seconds = 0;
    std::uint64_t delivered_in_window_span = 0;
    std::optional<CpuTime> server_time;  // none without --server-pid
    CpuTime bench_time;
    MachineTime machine;
    long rss_before = -1;
    long rss_after = -1;
    long rss_flood_start = -1;  // when the history flooders began asking
};

void print_storm(const RunState& run, const Report& r) {
    const auto& o = run.options;
    const double clients = o.clients;
    const auto frames = static_cast<double>(run.storm.frames.load());
    const auto bytes = static_cast<double>(run.storm.bytes.load());
    std::cout << std::fixed << std::setprecision(3);
    if (o.json) {
        std::cout << "{\n  \"clients\": " << o.clients << ", \"storm\": true"
                  << ", \"login_seconds\": " << r.login_seconds
                  << ", \"back\": " << run.storm.back.load()
                  << ",\n  \"storm_back_seconds\": " << r.storm_back_seconds
                  << ", \"storm_settled_seconds\": " << r.storm_settled_seconds
                  << ",\n  \"frames_per_client\": " << frames / clients
                  << ", \"bytes_per_client\": " << bytes / clients << "\n}\n";
        return;
    }
    std::cout << "clients        " << o.clients << " logged in in " << r.login_seconds << " s\n"
              << "after restart  " << run.storm.back.load() << " back in " << r.storm_back_seconds
              << " s, presence traffic over after " << r.storm_settled_seconds << " s\n"
              << "per client     " << frames / clients << " frames, " << bytes / clients
              << " bytes received during the storm\n";
}

void print(const RunState& run, const Report& r, std::uint64_t expected, int connected) {
    const auto& o = run.options;
    Histogram latency;
    for (const auto& h : run.histograms) {
        latency.merge(*h);
    }
    const auto received = run.traffic.delivered_in_window.load();
    const auto delivered = static_cast<double>(r.delivered_in_window_span);
    const double rate = r.window_seconds > 0 ? delivered / r.window_seconds : 0;
    // -1: not measured (no --server-pid), in the JSON as in the text.
    const double server_cpu = r.server_time ? r.server_time->total() : -1;
    const double server_kernel = r.server_time ? r.server_time->system : -1;
    const auto per_delivery = [&](double cpu) {
        return r.delivered_in_window_span > 0 && cpu >= 0 ? cpu * 1e6 / delivered : -1;
    };
    const auto format_codes = [&](const std::map<int, int>& seen) {
        std::ostringstream codes;
        bool first = true;
        for (const auto& [code, count] : seen) {
            codes << (first ? "" : ", ") << (o.json ? "\"" : "") << code << (o.json ? "\": " : ": ")
                  << count;
            first = false;
        }
        return codes.str();
    };
    const auto codes = format_codes(run.close_codes);
    const auto flood_codes = format_codes(run.flood_close_codes);
    const long rss_delta = r.rss_after >= 0 && r.rss_before >= 0 ? r.rss_after - r.rss_before : -1;
    const double rss_per_connection =
        rss_delta >= 0 && connected > 0 ? static_cast<double>(rss_delta) * 1024.0 / connected : -1;
    std::cout << std::fixed << std::setprecision(3);
    if (o.json) {
        std::cout << "{\n"
                  << "  \"clients\": " << o.clients << ", \"connected\": " << connected
                  << ", \"login_seconds\": " << r.login_seconds << ",\n"
                  << "  \"senders\": " << o.senders << ", \"rate\": " << o.rate
                  << ", \"window\": " << o.window
                  << ", \"aligned\": " << (o.aligned ? "true" : "false") << ", \"ack\": \""
                  << (o.ack_all ? "all" : "echo") << "\""
                  << ", \"size\": " << o.size << ", \"threads\": " << o.threads
                  << ", \"idle\": " << (o.idle ? "true" : "false") << ",\n"
                  << "  \"duration_seconds\": " << r.window_seconds
                  << ", \"sent\": " << run.traffic.sent_in_window.load()
                  << ", \"expected_deliveries\": " << expected << ", \"received\": " << received
                  << ", \"lost\": " << (expected > received ? expected - received : 0)
                  << ", \"delivered_total\": " << run.traffic.delivered_total.load()
                  << ", \"deliveries_per_second\": " << rate << ",\n"
                  << "  \"latency_us\": {\"p50\": " << latency.quantile(0.5)
                  << ", \"p90\": " << latency.quantile(0.9)
                  << ", \"p99\": " << latency.quantile(0.99)
                  << ", \"p99.9\": " << latency.quantile(0.999) << ", \"max\": " << latency.max()
                  << "},\n"
                  << "  \"errors\": " << run.traffic.errors.load()
                  << ", \"gaps\": " << run.traffic.gaps.load()
                  << ", \"connect_failures\": " << run.logins.failed.load()
                  << ", \"close_codes\": {" << codes << "},\n"
                  << "  \"flooders\": " << o.flooders
                  << ", \"flood_logins\": " << run.flood.logins.load()
                  << ", \"flood_sent\": " << run.flood.frames_sent.load()
                  << ", \"flood_close_codes\": {" << flood_codes << "},\n"
                  << "  \"history_flooders\": " << o.history_flooders
                  << ", \"history_logins\": " << run.history.logins.load()
                  << ", \"history_requests\": " << run.history.requests.load()
                  << ", \"server_rss_flood_start_kib\": " << r.rss_flood_start
                  << ", \"server_rss_peak_kib\": " << run.history.server_rss_peak_kib.load()
                  << ",\n"
                  << "  \"server_cpu_seconds\": " << server_cpu
                  << ", \"server_cpu_us_per_delivery\": " << per_delivery(server_cpu)
                  << ", \"bench_cpu_seconds\": " << r.bench_time.total()
                  << ", \"bench_cpu_us_per_delivery\": " << per_delivery(r.bench_time.total())
                  << ",\n  \"server_kernel_seconds\": " << server_kernel
                  << ", \"bench_kernel_seconds\": " << r.bench_time.system
                  << ", \"machine_seconds\": {\"busy\": " << r.machine.busy
                  << ", \"irq\": " << r.machine.irq << ", \"steal\": " << r.machine.steal
                  << ", \"idle\": " << r.machine.idle << "},\n"
                  << "  \"server_rss_before_kib\": " << r.rss_before
                  << ", \"server_rss_after_kib\": " << r.rss_after
                  << ", \"server_rss_bytes_per_connection\": " << rss_per_connection << "\n}\n";
        return;
    }
    std::cout << "clients        " << connected << " of " << o.clients << " logged in in "
              << r.login_seconds << " s (" << run.logins.failed.load() << " failed)\n";
    if (o.idle) {
        std::cout << "server RSS     " << r.rss_before << " KiB before, " << r.rss_after
                  << " KiB with the clients: " << std::setprecision(0) << rss_per_connection
                  << " bytes per connection\n";
    } else {
        std::cout << "sent           " << run.traffic.sent_in_window.load() << " messages in "
                  << r.window_seconds << " s by " << o.senders << " senders\n"
                  << "deliveries     " << std::setprecision(0) << rate << " /s; expected "
                  << expected << ", received " << received << ", lost "
                  << (expected > received ? expected - received : 0) << ", gaps "
                  << run.traffic.gaps.load() << "\n"
                  << "latency (us)   p50 " << latency.quantile(0.5) << "  p90 "
                  << latency.quantile(0.9) << "  p99 " << latency.quantile(0.99) << "  p99.9 "
                  << latency.quantile(0.999) << "  max " << latency.max() << "\n"
                  << std::setprecision(3) << "cpu per delivery (us)  server "
                  << per_delivery(server_cpu) << " (kernel " << per_delivery(server_kernel)
                  << ")  bench " << per_delivery(r.bench_time.total()) << " (kernel "
                  << per_delivery(r.bench_time.system) << ")\n"
                  << "machine (s)    busy " << r.machine.busy << "  irq " << r.machine.irq
                  << "  steal " << r.machine.steal << "  idle " << r.machine.idle << " over "
                  << r.window_seconds << " s\n";
    }
    std::cout << "errors         " << run.traffic.errors.load() << "; close codes seen: {" << codes
              << "}\n";
    if (o.flooders > 0) {
        std::cout << "flooders       " << o.flooders << ": " << run.flood.logins.load()
                  << " logins, " << run.flood.frames_sent.load() << " frames sent; close codes {"
                  << flood_codes << "}\n";
    }
    if (o.history_flooders > 0) {
        const long peak = run.history.server_rss_peak_kib.load();
        std::cout << "history flood  " << o.history_flooders
                  << " clients: " << run.history.logins.load() << " logins, "
                  << run.history.requests.load() << " requests; server RSS " << r.rss_flood_start
                  << " KiB when they began asking, peak " << peak << " KiB (+"
                  << (peak >= 0 && r.rss_flood_start >= 0 ? peak - r.rss_flood_start : -1)
                  << " KiB)\n";
    }
}

/// One abusive client: logs in, then sends messages as fast as the socket takes
/// them, ignoring the rate limit and the server's errors, until the server
/// closes it; then does it again under a new name, for as long as the others
/// send. Its frames are not counted as deliveries.
struct Flooder {
    websocket::stream<beast::tcp_stream> ws;
    bool closed = false;
    explicit Flooder(asio::any_io_executor executor) : ws(std::move(executor)) {}
};

awaitable<void> drain_flooder(RunState& run, std::shared_ptr<Flooder> flooder) {
    beast::flat_buffer buffer;
    for (;;) {
        auto [ec, n] = co_await flooder->ws.async_read(buffer, use_nothrow);
        buffer.consume(buffer.size());
        if (ec) {
            run.flooder_closed(ec == websocket::error::closed ? flooder->ws.reason().code : 1006);
            flooder->closed = true;
            co_return;
        }
    }
}

awaitable<void> flood(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    ChatRequest message;
    message.set_type("message");
    message.set_content(std::string(static_cast<std::size_t>(o.size), 'f'));
    const auto bytes = message.SerializeAsString();
    for (int round = 0; run.phase.sending.load(std::memory_order_relaxed); ++round) {
        auto flooder = std::make_shared<Flooder>(executor);
        auto& tcp_layer = beast::get_lowest_layer(flooder->ws);
        tcp::resolver resolver(executor);
        const auto& server = o.server_for(index);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        tcp_layer.expires_after(10s);
        if (rec || std::get<0>(co_await tcp_layer.async_connect(endpoints, use_nothrow)) ||
            std::get<0>(
                co_await flooder->ws.async_handshake(server.host, server.path, use_nothrow))) {
            co_await pause(std::chrono::duration<double>(0.1));
            continue;
        }
        tcp_layer.expires_never();
        flooder->ws.binary(true);
        ChatRequest login;
        login.set_type("login");
        login.set_user_name("flood" + std::to_string(getpid()) + "-" + std::to_string(index) + "-" +
                            std::to_string(round));
        const auto login_bytes = login.SerializeAsString();
        if (std::get<0>(co_await flooder->ws.async_write(asio::buffer(login_bytes), use_nothrow))) {
            continue;
        }
        run.flood.logins.fetch_add(1, std::memory_order_relaxed);
        asio::co_spawn(executor, drain_flooder(run, flooder), asio::detached);
        while (!flooder->closed && run.phase.sending.load(std::memory_order_relaxed)) {
            if (std::get<0>(co_await flooder->ws.async_write(asio::buffer(bytes), use_nothrow))) {
                break;
            }
            run.flood.frames_sent.fetch_add(1, std::memory_order_relaxed);
        }
        if (!flooder->closed) {
            tcp_layer.expires_after(5s);
            co_await flooder->ws.async_close(websocket::close_code::normal, use_nothrow);
        }
    }
}

/// One client of --history-flooders, the attack of the issue on rule 14:
/// logs in, posts 4 messages of 4,000 bytes (once), then, when control()
/// has seen everyone's, asks for the page below them in bursts of 35 every
/// 2 s (17.5 frames/s: within the contract's 20/s with a burst of 40) and
/// reads nothing after its welcome. Once the server has dropped it (its
/// writes fail when the server gives up on the close), it logs in again
/// under a new name, for as long as the others send.
awaitable<void> history_flood(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto& server = o.server_for(index);
    ChatRequest request;
    request.set_type("message");
    request.set_content(std::string(4000, 'h'));
    const auto post = request.SerializeAsString();
    bool posted = false;
    for (int round = 0; run.phase.sending.load(std::memory_order_relaxed); ++round) {
        websocket::stream<beast::tcp_stream> ws(executor);
        auto& tcp_layer = beast::get_lowest_layer(ws);
        tcp_layer.expires_after(10s);
        tcp::resolver resolver(executor);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        bool up = !rec && !std::get<0>(co_await tcp_layer.async_connect(endpoints, use_nothrow)) &&
                  !std::get<0>(co_await ws.async_handshake(server.host, server.path, use_nothrow));
        if (up) {
            ws.binary(true);
            request.Clear();
            request.set_type("login");
            request.set_user_name("history" + std::to_string(getpid()) + "-" +
                                  std::to_string(index) + "-" + std::to_string(round));
            const auto login = request.SerializeAsString();
            beast::flat_buffer welcome;  // the only frame it reads
            up = !std::get<0>(co_await ws.async_write(asio::buffer(login), use_nothrow)) &&
                 !std::get<0>(co_await ws.async_read(welcome, use_nothrow));
        }
        if (!up) {
            co_await pause(std::chrono::duration<double>(0.1));
            continue;
        }
        tcp_layer.expires_never();
        run.history.logins.fetch_add(1, std::memory_order_relaxed);
        for (int i = 0; i < 4 && !posted; ++i) {
            if (std::get<0>(co_await ws.async_write(asio::buffer(post), use_nothrow))) {
                break;
            }
            run.history.posted.fetch_add(1);
        }
        posted = true;
        while (run.history.ask_below.load() == 0 &&
               run.phase.sending.load(std::memory_order_relaxed)) {
            co_await pause(std::chrono::duration<double>(0.05));
        }
        request.Clear();
        request.set_type("history");
        request.set_id(run.history.ask_below.load());
        const auto ask = request.SerializeAsString();
        bool broken = false;
        while (!broken && run.phase.sending.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 35 && !broken; ++i) {
                broken =
                    std::get<0>(co_await ws.async_write(asio::buffer(ask), use_nothrow)).failed();
                run.history.requests.fetch_add(broken ? 0 : 1, std::memory_order_relaxed);
            }
            co_await pause(std::chrono::duration<double>(2));
        }
    }
}

/// The history flooders' first phase: their large messages are posted and
/// the clients have them; then they are told what to ask below, and the
/// server's memory is watched from there on.
awaitable<void> start_history_flood(RunState& run, Report& report) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto base = run.history.highest_id_seen.load();
    for (int i = 0; i < o.history_flooders; ++i) {
        asio::co_spawn(asio::make_strand(executor), history_flood(run, i), asio::detached);
    }
    const auto posts = 4 * o.history_flooders;
    const auto since = Clock::now();
    while ((run.history.posted.load() < posts ||
            run.history.highest_id_seen.load() <
                base + static_cast<std::uint64_t>(run.history.posted.load())) &&
           Clock::now() - since < 30s) {
        co_await pause(50ms);
    }
    std::cerr << "history flooders: " << run.history.posted.load() << " of " << posts
              << " large messages posted; asking below id "
              << run.history.highest_id_seen.load() + 1 << "\n";
    run.history.ask_below = run.history.highest_id_seen.load() + 1;
    if (o.server_pids.empty()) {
        co_return;  // no memory to watch
    }
    report.rss_flood_start = servers_rss_kib(o.server_pids);
    run.history.server_rss_peak_kib = report.rss_flood_start;
    asio::co_spawn(
        executor,
        [](RunState& watched) -> awaitable<void> {
            while (!watched.phase.closing.load()) {
                raise_to(watched.history.server_rss_peak_kib,
                         servers_rss_kib(watched.options.server_pids));
                co_await pause(100ms);
            }
        }(run),
        asio::detached);
}

/// Runs the phases: logins, (idle hold | warm-up, measurement, drain), closes.
awaitable<void> control(RunState& run, std::vector<std::shared_ptr<Client>>& clients,
                        Report& report, std::uint64_t& expected, int& connected) {
    const auto& o = run.options;
    const auto start = Clock::now();
    auto last_progress = start;
    while (run.logins.connected.load() + run.logins.failed.load() < o.clients) {
        co_await pause(50ms);
        if (Clock::now() - last_progress >= 1s) {
            last_progress = Clock::now();
            std::cerr << "logging in: " << run.logins.connected.load() << " of " << o.clients
                      << "\n";
        }
    }
    report.login_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    connected = run.logins.connected.load();
    std::cerr << "logged in: " << connected << " in " << report.login_seconds << " s\n";

    if (o.idle) {
        co_await pause(
            std::chrono::duration<double>(o.hold > 0 ? o.hold : std::min(o.duration, 3.0)));
        if (!o.server_pids.empty()) {
            report.rss_after = servers_rss_kib(o.server_pids);
        }
    } else {
        if (o.history_flooders > 0) {
            co_await start_history_flood(run, report);
        }
        for (int i = 0; i < o.senders && i < o.clients; ++i) {
            if (clients[static_cast<std::size_t>(i)]) {
                auto& client = clients[static_cast<std::size_t>(i)];
                asio::co_spawn(client->executor(), client->send_loop(), asio::detached);
            }
        }
        for (int i = 0; i < o.flooders; ++i) {
            asio::co_spawn(asio::make_strand(co_await asio::this_coro::executor), flood(run, i),
                           asio::detached);
        }
        co_await pause(std::chrono::duration<double>(o.warmup));
        const auto server_cpu0 = servers_cpu(o.server_pids);
        const auto bench_cpu0 = self_cpu();
        const auto machine0 = machine_time();
        const auto delivered0 = run.traffic.delivered_total.load();
        const auto window_start = Clock::now();
        run.phase.window_start_ns = now_ns();
        for (int second = 1;
             Clock::now() - window_start < std::chrono::duration<double>(o.duration); ++second) {
            const auto before = run.traffic.delivered_total.load();
            const double left =
                o.duration - std::chrono::duration<double>(Clock::now() - window_start).count();
            co_await pause(std::chrono::duration<double>(std::min(1.0, left)));
            std::cerr << "t=" << second << "s deliveries/s "
                      << (run.traffic.delivered_total.load() - before) << " sent "
                      << run.traffic.sent_total.load() << " errors " << run.traffic.errors.load()
                      << "\n";
        }
        run.phase.window_end_ns = now_ns();
        report.window_seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
        report.delivered_in_window_span = run.traffic.delivered_total.load() - delivered0;
        if (!o.server_pids.empty()) {
            report.server_time = servers_cpu(o.server_pids) - server_cpu0;
        }
        report.bench_time = self_cpu() - bench_cpu0;
        report.machine = machine_time() - machine0;
        run.phase.sending = false;
        for (auto& client : clients) {
            if (client) {
                client->stop_sending();
            }
        }
        // Drain: what was sent in the window should all arrive.
        expected = run.traffic.sent_in_window.load() * static_cast<std::uint64_t>(connected);
        const auto drain_start = Clock::now();
        while (run.traffic.delivered_in_window.load() < expected &&
               Clock::now() - drain_start < 5s) {
            co_await pause(20ms);
            expected = run.traffic.sent_in_window.load() * static_cast<std::uint64_t>(connected);
        }
    }
    run.phase.closing = true;
    for (auto& client : clients) {
        if (client) {
            asio::co_spawn(client->executor(), client->close(), asio::detached);
        }
    }
    co_await pause(std::chrono::duration<double>(0.5));
}

/// The page's reconnection delay (www/js/backoff.js): 500 ms doubling up to
/// 15 s, half of it random.
std::chrono::duration<double> page_backoff(int attempt, std::mt19937& random) {
    const double exponential = std::min(15.0, 0.5 * std::pow(2.0, std::min(attempt, 30)));
    return std::chrono::duration<double>(
        exponential / 2 + exponential / 2 * std::uniform_real_distribution<double>(0, 1)(random));
}

/// One client of the storm: logged in, reads every frame, and when the
/// server goes away comes back as the page does, with the same name.
awaitable<void> storm_client(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto& server = o.server_for(index);
    const auto name = "s" + std::to_string(getpid()) + "-" + std::to_string(index);
    std::mt19937 random(static_cast<unsigned>(index) * 7919u + static_cast<unsigned>(getpid()));
    bool was_online = false;
    for (int attempt = 0; !run.phase.closing.load();) {
        websocket::stream<beast::tcp_stream> ws(executor);
        ws.read_message_max(std::size_t{64} * 1024 * 1024);
        auto& tcp_layer = beast::get_lowest_layer(ws);
        tcp_layer.expires_after(30s);
        tcp::resolver resolver(executor);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        bool up = !rec;
        if (up) {
            auto [cec, endpoint] = co_await tcp_layer.async_connect(endpoints, use_nothrow);
            up = !cec;
        }
        if (up) {
            auto [hec] = co_await ws.async_handshake(server.host, server.path, use_nothrow);
            up = !hec;
        }
        if (up) {
            ws.binary(true);
            ChatRequest login;
            login.set_type("login");
            login.set_user_name(name);
            const auto bytes = login.SerializeAsString();
            auto [wec, n] = co_await ws.async_write(asio::buffer(bytes), use_nothrow);
            up = !wec;
        }
        beast::flat_buffer buffer;
        bool welcomed = false;
        while (up) {
            auto [ec, n] = co_await ws.async_read(buffer, use_nothrow);
            if (ec) {
                break;
            }
            const auto frame = beast::buffers_to_string(buffer.data());
            buffer.consume(n);
            if (run.storm.under_way.load(std::memory_order_relaxed)) {
                run.storm.frames.fetch_add(1, std::memory_order_relaxed);
                run.storm.bytes.fetch_add(n, std::memory_order_relaxed);
            }
            const auto view = scan(frame);
            if (!view) {
                continue;
            }
            if (!welcomed) {
                if (view->type != "login") {
                    break;  // refused (the old connection still holds the name): try again
                }
                welcomed = true;
                tcp_layer.expires_never();
                attempt = 0;
                run.storm.online.fetch_add(1);
                if (was_online) {
                    run.storm.back.fetch_add(1);
                    raise_to(run.storm.last_welcome_ns, now_ns());
                }
                was_online = true;
            } else if (view->type == "presence" || view->type == "login" ||
                       view->type == "logout") {
                if (run.storm.under_way.load(std::memory_order_relaxed)) {
                    raise_to(run.storm.last_notice_ns, now_ns());
                }
            }
        }
        if (welcomed) {
            run.storm.online.fetch_sub(1);
            if (!run.phase.closing.load()) {
                auto expected = std::int64_t{0};
                run.storm.first_close_ns.compare_exchange_strong(expected, now_ns());
                run.storm.under_way = true;
            }
        }
        co_await pause(page_backoff(attempt++, random));
    }
}

/// --storm: logins, the wait for the restart, the way back, the quiet after.
awaitable<void> storm_control(RunState& run, Report& report) {
    const auto& o = run.options;
    const auto start = Clock::now();
    auto progress = start;
    const auto until = [&](auto done, double limit, const char* what) -> awaitable<bool> {
        const auto since = Clock::now();
        while (!done()) {
            if (std::chrono::duration<double>(Clock::now() - since).count() > limit) {
                std::cerr << "storm: gave up waiting for " << what << "\n";
                co_return false;
            }
            co_await pause(20ms);
            if (Clock::now() - progress >= 1s) {
                progress = Clock::now();
                std::cerr << what << ": " << run.storm.online.load() << " online, "
                          << run.storm.back.load() << " back\n";
            }
        }
        co_return true;
    };
    if (co_await until([&] { return run.storm.online.load() >= o.clients; }, 300, "logging in")) {
        report.login_seconds = std::chrono::duration<double>(Clock::now() - start).count();
        std::cerr << "logged in: " << run.storm.online.load() << " in " << report.login_seconds
                  << " s\n";
        co_await until([&] { return run.storm.first_close_ns.load() != 0; }, o.storm,
                       "the server's restart");
        if (co_await until([&] { return run.storm.back.load() >= o.clients; }, o.storm,
                           "the clients to come back")) {
            // Then until the joins stop coming: a second without a notice.
            co_await until(
                [&] {
                    const auto last =
                        std::max(run.storm.last_notice_ns.load(), run.storm.last_welcome_ns.load());
                    return now_ns() - last > 1'000'000'000;
                },
                o.storm, "the presence traffic to end");
        }
    }
    const auto first = run.storm.first_close_ns.load();
    report.storm_back_seconds =
        first != 0 && run.storm.back.load() >= o.clients
            ? static_cast<double>(run.storm.last_welcome_ns.load() - first) / 1e9
            : -1;
    report.storm_settled_seconds =
        first != 0 && report.storm_back_seconds >= 0
            ? static_cast<double>(
                  std::max(run.storm.last_notice_ns.load(), run.storm.last_welcome_ns.load()) -
                  first) /
                  1e9
            : -1;
    run.phase.closing = true;
}

/// Runs `io` on `threads` threads until `control` has ended (and the clients
/// with it); rethrows what `control` threw.
void run_until_done(asio::io_context& io, int threads, awaitable<void> control) {
    asio::co_spawn(io, std::move(control), [&io](const std::exception_ptr& e) {
        if (e) {
            std::rethrow_exception(e);
        }
        io.stop();
    });
    std::vector<std::jthread> workers;
    for (int i = 1; i < threads; ++i) {
        workers.emplace_back([&io] { io.run(); });
    }
    io.run();
}

}  // namespace chat::bench

int main(int argc, char** argv) {
    using namespace chat::bench;
    using namespace chat;
    const auto options = parse_options(argc, argv);
    if (!options) {
        return 0;
    }
    chat::net::raise_file_limit();
    RunState run;
    run.options = *options;
    const auto& o = run.options;

    asio::io_context io(o.threads);
    std::vector<std::shared_ptr<Client>> clients(static_cast<std::size_t>(o.clients));
    run.ack_all.clients = &clients;
    Report report;
    report.rss_before = o.server_pids.empty() ? -1 : servers_rss_kib(o.server_pids);

    if (o.storm > 0) {
        for (int i = 0; i < o.clients; ++i) {
            asio::co_spawn(asio::make_strand(io), storm_client(run, i), asio::detached);
        }
        run_until_done(io, o.threads, storm_control(run, report));
        print_storm(run, report);
        return report.storm_back_seconds >= 0 ? 0 : 1;
    }

    std::atomic<int> next{0};
    const auto connector = [&]() -> awaitable<void> {
        for (int i; (i = next.fetch_add(1)) < o.clients;) {
            auto client = std::make_shared<Client>(run, asio::make_strand(io), i);
            const bool ok =
                co_await asio::co_spawn(client->executor(), client->start(), asio::use_awaitable);
            if (!ok) {
                ++run.logins.failed;
                continue;
            }
            clients[static_cast<std::size_t>(i)] = client;
            asio::co_spawn(client->executor(), client->read_loop(), asio::detached);
            ++run.logins.connected;
        }
    };
    for (int c = 0; c < std::min(o.connect_concurrency, o.clients); ++c) {
        asio::co_spawn(io, connector(), asio::detached);
    }
    std::uint64_t expected = 0;
    int connected = 0;
    run_until_done(io, o.threads, control(run, clients, report, expected, connected));
    print(run, report, expected, connected);
    return connected == o.clients ? 0 : 1;
}
