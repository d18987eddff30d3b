#include "client.hpp"

#include <charconv>
#include <chrono>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>

#include "chat/chat.pb.h"
#include "clock.hpp"

namespace chat::bench {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

Client::Client(RunState& run, asio::any_io_executor strand, int index)
    : run_(run),
      ws_(strand),
      wake_(strand),
      index_(index),
      name_(user_name("b", {index})),
      room_(run.options.room_of(index)) {}

awaitable<bool> Client::start() {
    const auto& o = run_.options;
    const auto spread =
        o.clients > clients_per_loopback_address ? std::optional(index_) : std::nullopt;
    if (!co_await open_websocket(ws_, o.server_for(index_), 30s, spread)) {
        co_return false;
    }
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    tcp_layer.expires_never();
    const auto login = login_request(name_);
    if (auto [wec, n] = co_await ws_.async_write(asio::buffer(login), use_nothrow); wec) {
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

awaitable<void> Client::read_loop() {
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
    join_ended(false);  // if it was under way
    wake_.cancel();
}

awaitable<void> Client::join_room() {
    const auto self = shared_from_this();
    if (room_ < 0) {
        co_return;
    }
    room_state_ = RoomState::joining;
    if (closed_) {
        join_ended(false);
        co_return;
    }
    ChatRequest join;
    join.set_type("join");
    join.set_room(run_.rooms.names[static_cast<std::size_t>(room_)]);
    const auto bytes = join.SerializeAsString();
    std::int64_t none = 0;
    run_.rooms.first_join_ns.compare_exchange_strong(none, now_ns());
    // Through Beast, as the login was: a pong the read loop sends meanwhile
    // (through Beast too) waits for it.
    if (auto [ec, n] = co_await ws_.async_write(asio::buffer(bytes), use_nothrow); ec) {
        join_ended(false);
    }
}

void Client::join_ended(bool joined) {
    if (room_state_ != RoomState::joining && room_state_ != RoomState::welcomed) {
        return;
    }
    auto& rooms = run_.rooms;
    if (joined) {
        room_state_ = RoomState::joined;
        rooms.room(room_).members.fetch_add(1);
        raise_to(rooms.last_joined_ns, now_ns());
        rooms.joined.fetch_add(1);
    } else {
        room_state_ = RoomState::failed;
        rooms.join_failed.fetch_add(1);
    }
}

// The frames go straight onto the socket (ws_frames.hpp), masked, as a
// browser's would one by one.
awaitable<void> Client::send_loop() {
    const auto self = shared_from_this();
    const auto& o = run_.options;
    if (room_ >= 0 && room_state_ != RoomState::joined) {
        co_return;  // its join failed: nowhere to send
    }
    const auto interval = o.rate > 0
                              ? std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / o.rate))
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
    if (room_ >= 0) {
        message.set_room(run_.rooms.names[static_cast<std::size_t>(room_)]);
    }
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
            writer_.append(opcode::binary, message.SerializeAsString());
        }
        in_flight_ += due;
        if (!co_await writer_.flush(beast::get_lowest_layer(ws_).socket())) {
            break;
        }
        run_.traffic.sent_total.fetch_add(static_cast<std::uint64_t>(due),
                                          std::memory_order_relaxed);
        if (run_.phase.in_window(sent_at)) {
            run_.traffic.sent_in_window.fetch_add(static_cast<std::uint64_t>(due),
                                                  std::memory_order_relaxed);
            if (room_ >= 0) {
                run_.rooms.room(room_).sent_in_window.fetch_add(static_cast<std::uint64_t>(due),
                                                                std::memory_order_relaxed);
            }
        }
    }
}

void Client::acknowledge(int sender) const {
    const auto& all = *run_.ack_all.clients;
    if (sender >= 0 && static_cast<std::size_t>(sender) < all.size() &&
        all[static_cast<std::size_t>(sender)]) {
        all[static_cast<std::size_t>(sender)]->acknowledged();
    }
}

void Client::acknowledged() {
    asio::post(ws_.get_executor(), [self = shared_from_this()] {
        if (self->in_flight_ > 0) {
            --self->in_flight_;
        }
        self->wake_.cancel();
    });
}

void Client::stop_sending() {
    asio::post(ws_.get_executor(), [self = shared_from_this()] { self->wake_.cancel(); });
}

awaitable<void> Client::close() {
    const auto self = shared_from_this();
    while (writer_.flushing()) {  // Beast's close frame must not land inside our write
        co_await asio::post(ws_.get_executor(), asio::use_awaitable);
    }
    beast::get_lowest_layer(ws_).expires_after(5s);
    co_await ws_.async_close(websocket::close_code::normal, use_nothrow);
}

awaitable<std::optional<std::string_view>> Client::next_message() {
    auto& socket = beast::get_lowest_layer(ws_).socket();
    message_.clear();
    for (;;) {
        if (const auto frame = reader_.next()) {
            const auto [fin, code, payload] = *frame;
            if (code == opcode::close) {
                close_code_ = payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                                        static_cast<unsigned char>(payload[1])
                                                  : close_code_absent;
                co_return std::nullopt;
            }
            if (code == opcode::ping) {
                const auto echoed = payload.substr(0, 125);
                if (sender_) {
                    // Our own writes go straight onto the socket: the pong
                    // goes with them, never in the middle of one.
                    writer_.append(opcode::pong, echoed);
                    wake_.cancel();
                    continue;
                }
                const websocket::ping_data data(echoed.data(), echoed.size());
                co_await ws_.async_pong(data, use_nothrow);
                continue;
            }
            if (code == opcode::pong) {
                continue;
            }
            if (fin && message_.empty()) {
                co_return payload;  // the common case: no copy
            }
            message_.append(payload);
            if (fin) {
                co_return std::string_view(message_);
            }
            continue;
        }
        auto [ec, n] = co_await socket.async_read_some(reader_.room(), use_nothrow);
        reader_.filled(n);
        if (ec) {
            close_code_ = close_code_abnormal;
            co_return std::nullopt;
        }
    }
}

void Client::on_frame(const FrameView& view, Histogram& histogram) {
    if (view.type == "error") {
        run_.traffic.errors.fetch_add(1, std::memory_order_relaxed);
        if (room_state_ == RoomState::joining || room_state_ == RoomState::welcomed) {
            // The answer to its join: "bad room", "too many rooms", ...
            run_.join_refused(view.content);
            join_ended(false);
        }
        return;
    }
    if (room_ >= 0) {
        if (!on_room_frame(view)) {
            return;
        }
    } else {
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
    if (room_ >= 0) {
        auto& rooms = run_.rooms;
        if (sender < 0 || sender >= run_.options.clients || run_.options.room_of(sender) != room_) {
            rooms.fault(room_, rooms.wrong_room);  // another room's message, labelled as ours
            return;
        }
        if (sender == last_room_sender_ && sent_at < last_room_sent_at_) {
            rooms.fault(room_, rooms.order_faults);
        }
        last_room_sender_ = sender;
        last_room_sent_at_ = sent_at;
    }
    run_.traffic.delivered_total.fetch_add(1, std::memory_order_relaxed);
    if (run_.phase.in_window(sent_at)) {
        run_.traffic.delivered_in_window.fetch_add(1, std::memory_order_relaxed);
        if (room_ >= 0) {
            run_.rooms.room(room_).delivered_in_window.fetch_add(1, std::memory_order_relaxed);
        }
        histogram.record(static_cast<std::uint64_t>((now_ns() - sent_at) / 1000));  // µs
    }
    if (run_.options.ack_all) {
        // Every client has it: in a room, every member (ids count per room).
        auto& receipts = room_ >= 0 ? run_.rooms.receipt(room_, view.id)
                                    : run_.ack_all.receipts[view.id % RunState::AckAll::slots];
        const int all =
            room_ >= 0 ? run_.rooms.room(room_).members.load() : run_.logins.connected.load();
        if (receipts.fetch_add(1) + 1 == all) {
            receipts = 0;  // the slot is free again
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

// Rule 17, as one member of one room sees it: nothing of the room before its
// welcome, then exactly its history, then the room's frames with ids that
// go up one by one; nothing of another room, and none of our messages in
// the lobby (our senders send in rooms only).
bool Client::on_room_frame(const FrameView& view) {
    auto& rooms = run_.rooms;
    const bool mine = view.room == rooms.names[static_cast<std::size_t>(room_)];
    if (room_state_ == RoomState::welcomed) {
        if (mine && view.type == "history") {
            join_ended(true);
            return false;
        }
        rooms.fault(room_, rooms.join_order);  // between the welcome and its history
    }
    if (view.room.empty()) {
        if (view.type != "message") {
            return false;
        }
        const auto ours = std::string_view(name_).substr(0, name_.find('-') + 1);
        if (view.user_name.substr(0, ours.size()) == ours) {
            rooms.fault(room_, rooms.wrong_room);
        }
        if (run_.options.history_flooders > 0) {  // they post in the lobby
            raise_to(run_.history.highest_id_seen, view.id);
        }
        return false;
    }
    const bool inside = room_state_ == RoomState::welcomed || room_state_ == RoomState::joined;
    if (!mine || !inside) {
        if (mine && room_state_ == RoomState::joining && view.type == "join" &&
            view.user_name == name_) {
            room_state_ = RoomState::welcomed;
            last_room_id_ = view.id;  // the room's last message id
            return false;
        }
        rooms.fault(room_, rooms.wrong_room);
        return false;
    }
    if (view.type == "history") {
        rooms.fault(room_, rooms.join_order);  // a second one: we ask for none
        return false;
    }
    if (view.type != "message") {
        return false;  // the room's join, leave and presence notices
    }
    if (view.id <= last_room_id_) {
        rooms.fault(room_, rooms.order_faults);
        return false;  // a duplicate or a late one: not a delivery
    }
    if (view.id != last_room_id_ + 1) {
        rooms.gaps.fetch_add(1, std::memory_order_relaxed);
    }
    last_room_id_ = view.id;
    return true;
}

}  // namespace chat::bench
