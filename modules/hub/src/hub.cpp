#include "chat/hub/hub.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <utility>

#include <boost/asio/post.hpp>

#include "chat/chat.pb.h"
#include "chat/logging/log.hpp"

namespace chat::hub {

namespace {

/// "2026-11-29T03:04:05.123Z": the join time in a user list.
std::string rfc3339_now() {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto seconds = system_clock::to_time_t(now);
    const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    const auto length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03dZ", static_cast<int>(millis));
    return std::string(text, length) + fraction;
}

/// Commands the hub runs ahead of its writers at most (see run()).
constexpr std::size_t commands_per_round = 64;

/// Messages in one answer to a history request at most (rule 14).
constexpr std::size_t older_page = 100;

Frame serialise(const ChatRequest& message) {
    return std::make_shared<const std::string>(message.SerializeAsString());
}

}  // namespace

Hub::Hub(asio::any_io_executor executor, metrics::Metrics& metrics, FrameClock& clock,
         History& history, const HubLimits& limits)
    : executor_(std::move(executor)),
      metrics_(metrics),
      clock_(clock),
      history_(history),
      limits_(limits),
      commands_(executor_, limits.capacity),
      writers_idle_(std::make_shared<asio::steady_timer>(executor_)),
      ring_(std::max(limits.history_on_join, limits.resume_limit)) {
    // Where the count goes on, and the newest messages for joins and resumes.
    auto start = history_.start(std::max(limits.history_on_join, limits.resume_limit));
    epoch_ = std::move(start.epoch);
    last_message_id_ = start.last_id;
    auto id = last_message_id_ - start.newest.size();
    for (auto& message : start.newest) {
        ring_.push(++id, std::move(message));
    }
    writers_ = std::make_shared<WakeQueue>(
        limits.writers_awake, [executor = executor_, idle = std::weak_ptr(writers_idle_)] {
            asio::post(executor, [idle] {
                if (const auto timer = idle.lock()) {
                    timer->cancel();
                }
            });
        });
}

awaitable<bool> Hub::send(Command command) {
    const error_code no_error;
    // Without a wait when there is room: an asynchronous send completes through
    // the scheduler's queue, behind every handler already in it.
    if (commands_.try_send(no_error, std::move(command))) {
        co_return true;
    }
    if (!commands_.is_open()) {
        co_return false;
    }
    // A try_send that fails moves nothing: the channel constructs its message
    // only once it has room (Asio's channel_service::try_send).
    // NOLINTNEXTLINE(bugprone-use-after-move)
    auto [ec] = co_await commands_.async_send(no_error, std::move(command), use_nothrow);
    co_return !ec;
}

void Hub::stop() {
    asio::post(executor_, [this] { begin_stop(); });
}

awaitable<void> Hub::run() {
    for (;;) {
        auto [ec, received] = co_await commands_.async_receive(use_nothrow);
        if (ec) {
            break;  // closed by the last Unregister after stop()
        }
        // Then what else is waiting, without a trip through the scheduler's
        // queue for each.
        Command command = std::move(received);
        bool more = true;
        while (more) {
            std::visit([this](auto& c) { handle(c); }, command);
            drop_slow_peers();
            more =
                ++since_idle_ < commands_per_round &&
                commands_.try_receive([&](error_code, Command next) { command = std::move(next); });
        }
        schedule_wakes();
        if (!unkept_.empty()) {
            co_await flush_unkept();
        }
        if (stopping_ && members_.empty()) {
            commands_.close();  // the last one has left; later senders learn the hub is gone
        }
        // A new message goes out with the writers' turns already under way (a
        // writer not yet reached takes it in its turn), but the hub runs at
        // most commands_per_round commands ahead of its writers: then it waits
        // until every writer it woke has written, so that no queue gathers
        // more than that many commands' frames between two turns.
        if (since_idle_ >= commands_per_round) {
            co_await wait_for_writers();
        }
        if (!writers_->busy()) {
            since_idle_ = 0;
        }
    }
    // Every message goes to the history before the hub ends (rule 11: kept
    // history is written out before the process exits).
    co_await flush_unkept();
    // A Register received just as stop() closed the channel made a member
    // that can no longer unregister (its session is closed with 1001 all the
    // same), and Asio's close() keeps buffered commands: let go of both.
    abandon();
    CHAT_LOG(debug) << "hub stopped";
}

awaitable<void> Hub::wait_for_writers() {
    while (writers_->busy()) {
        writers_idle_->expires_after(limits_.turn_limit);
        if (auto [ec] = co_await writers_idle_->async_wait(use_nothrow); ec) {
            continue;  // cancelled: the writers may all be done
        }
        for (const auto& peer : writers_->revoke_overdue(limits_.turn_limit)) {
            const auto member = members_.find(peer->id());
            CHAT_LOG_CONN(error, peer->id()) << "dropped: its writer held its turn for over "
                                             << limits_.turn_limit.count() << " ms";
            metrics_.dropped(metrics::DropReason::stalled_writer);
            peer->close(proto::CloseCode::internal_error);
            if (member != members_.end()) {
                leave(member);
            }
        }
        drop_slow_peers();
        schedule_wakes();
    }
}

void Hub::abandon() {
    commands_.reset();  // discards what is buffered
    commands_.close();
    members_.clear();
    names_.clear();
    online_.clear();
    too_slow_.clear();
    to_wake_.clear();
}

void Hub::begin_stop() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    CHAT_LOG(info) << "hub stopping: closing " << members_.size() << " connections";
    for (auto& [id, member] : members_) {
        member.peer->close(proto::CloseCode::going_away);
    }
    if (members_.empty()) {
        commands_.close();
    }
}

void Hub::handle(Register& command) {
    auto& peer = *command.peer;
    members_.try_emplace(peer.id(), Member{std::move(command.peer), {}, {}, 0});
    if (stopping_) {
        peer.close(proto::CloseCode::going_away);
    }
}

void Hub::handle(Unregister& command) {
    const auto member = members_.find(command.peer);
    if (member == members_.end()) {
        return;  // dropped as too slow, and closed, while this was on its way
    }
    if (command.close) {
        member->second.peer->close(*command.close);
    }
    leave(member);
}

void Hub::handle(Broadcast& command) {
    const auto member = members_.find(command.from);
    if (member == members_.end()) {
        return;  // dropped as too slow while this was on its way
    }
    switch (command.kind) {
        case Broadcast::Kind::login:
            log_in(member->second, command);
            break;
        case Broadcast::Kind::message:
            post_message(member->second, std::move(command.text));
            break;
        case Broadcast::Kind::history:
            request_history(member->second, command.id);
            break;
    }
}

void Hub::log_in(Member& member, Broadcast& login) {
    const auto id = member.peer->id();
    if (!member.name.empty()) {
        reply_error(member, "already logged in");
        return;
    }
    if (names_.contains(login.text)) {
        CHAT_LOG_CONN(debug, id) << "login refused: name taken";
        reply_error(member, "name taken");
        return;
    }
    member.name = std::move(login.text);
    member.joined = rfc3339_now();
    member.online_index = online_.size();
    online_.push_back(member.peer);
    names_.emplace(member.name, id);
    metrics_.add(metrics_.users_online, 1);
    CHAT_LOG_CONN(info, id) << "login \"" << member.name << "\" (" << online_.size() << " online)";

    // The newcomer gets the whole list once; everybody else the one new entry.
    ChatRequest welcome;
    welcome.set_type("login");
    welcome.set_user_name(member.name);
    welcome.set_id(last_message_id_);
    welcome.set_epoch(epoch_);
    auto& everyone = *welcome.mutable_user_list();
    for (const auto& [other_id, other] : members_) {
        if (!other.name.empty()) {
            everyone[other.name] = other.joined;
        }
    }
    // Rule 13: right after the welcome, with nothing in between, the messages
    // the newcomer is owed: since the id it saw last if it comes back within
    // this epoch, else the newest few.
    const bool resumes = !login.epoch.empty() && login.epoch == epoch_ && login.id > 0 &&
                         login.id <= last_message_id_;
    const auto owed = resumes ? ring_.after(login.id, limits_.resume_limit)
                              : ring_.newest(limits_.history_on_join);
    {
        const FanOut fan_out(clock_);
        welcome.set_timestamp(fan_out.stamp());
        const std::array frames{serialise(welcome), history_frame(owed, fan_out.stamp())};
        deliver(member.peer, frames);
    }

    ChatRequest notice;
    notice.set_type("login");
    notice.set_user_name(member.name);
    (*notice.mutable_user_list())[member.name] = member.joined;
    fan_out(notice, id);
}

void Hub::post_message(Member& member, std::string content) {
    if (member.name.empty()) {
        reply_error(member, "log in first");
        return;
    }
    ChatRequest message;
    message.set_type("message");
    message.set_user_name(member.name);
    message.set_content(std::move(content));
    message.set_id(++last_message_id_);
    keep(message.id(), fan_out(message));
    metrics_.add(metrics_.messages_broadcast);
}

void Hub::keep(std::uint64_t id, const Frame& message) {
    ring_.push(id, message);
    // Behind those already waiting, so that the history keeps the id order.
    if (!unkept_.empty() || !history_.try_append(id, message)) {
        unkept_.emplace_back(id, message);
    }
}

awaitable<void> Hub::flush_unkept() {
    // The store's queue is full: the disk lags behind the room. The hub slows
    // down (no new command until these are taken) rather than lose any.
    asio::steady_timer retry(executor_);
    while (!unkept_.empty()) {
        if (history_.try_append(unkept_.front().first, unkept_.front().second)) {
            unkept_.pop_front();
            continue;
        }
        retry.expires_after(std::chrono::milliseconds(1));
        co_await retry.async_wait(use_nothrow);
    }
}

void Hub::request_history(Member& member, std::uint64_t before) {
    if (member.name.empty()) {
        reply_error(member, "log in first");
        return;
    }
    metrics_.add(metrics_.history_requests);
    // Read off the hub's strand; the answer comes back to it, in request order.
    // The executor is copied: a late answer (the server stopping) is posted to
    // a stopped io_context and never runs, and reads nothing of the hub.
    history_.read_before(before, older_page,
                         [executor = executor_, this,
                          peer = member.peer->id()](std::optional<std::vector<Frame>> messages) {
                             asio::post(executor, [this, peer, messages = std::move(messages)] {
                                 answer_history(peer, messages);
                             });
                         });
}

void Hub::answer_history(PeerId peer, const std::optional<std::vector<Frame>>& messages) {
    const auto member = members_.find(peer);
    if (member == members_.end()) {
        return;  // gone meanwhile
    }
    if (messages) {
        const FanOut fan_out(clock_);
        const std::array frames{history_frame(*messages, fan_out.stamp())};
        deliver(member->second.peer, frames);
    } else {
        reply_error(member->second, "history unavailable: too many requests, try again");
    }
    // Outside run()'s loop: do what it does after each command.
    drop_slow_peers();
    schedule_wakes();
}

void Hub::leave(Members::iterator member) {
    auto& leaving = member->second;
    if (!leaving.name.empty()) {
        // Swap-remove from the fan-out list, keeping the moved entry's index right.
        auto& slot = online_[leaving.online_index];
        slot = std::move(online_.back());
        members_.at(slot->id()).online_index = leaving.online_index;
        online_.pop_back();
        names_.erase(leaving.name);
        metrics_.add(metrics_.users_online, -1);
        CHAT_LOG_CONN(info, member->first)
            << "logout \"" << leaving.name << "\" (" << online_.size() << " online)";
        if (!stopping_) {
            ChatRequest notice;
            notice.set_type("logout");
            notice.set_user_name(leaving.name);
            fan_out(notice);
        }
    }
    members_.erase(member);
}

Frame Hub::fan_out(ChatRequest& message, PeerId except) {
    const FanOut fan_out(clock_);
    message.set_timestamp(fan_out.stamp());
    const std::array frame{serialise(message)};
    for (const auto& peer : online_) {
        if (peer->id() != except) {
            deliver(peer, frame);
        }
    }
    return frame.front();
}

void Hub::send_to(Member& member, ChatRequest& message) {
    const FanOut fan_out(clock_);
    message.set_timestamp(fan_out.stamp());
    const std::array frame{serialise(message)};
    deliver(member.peer, frame);
}

void Hub::reply_error(Member& member, const std::string& reason) {
    ChatRequest error;
    error.set_type("error");
    error.set_content(reason);
    send_to(member, error);
}

void Hub::deliver(const std::shared_ptr<Peer>& peer, std::span<const Frame> frames) {
    bool wake_needed = false;
    if (peer->frames().try_push_deferred(frames, wake_needed) == FrameQueue::Push::full) {
        too_slow_.push_back(peer->id());
    }
    if (wake_needed) {
        to_wake_.push_back(peer);
    }
}

void Hub::schedule_wakes() {
    for (const auto& peer : to_wake_) {
        writers_->request(peer);
    }
    to_wake_.clear();
}

void Hub::drop_slow_peers() {
    while (!too_slow_.empty()) {
        const auto id = too_slow_.back();
        too_slow_.pop_back();
        const auto member = members_.find(id);
        if (member == members_.end()) {
            continue;  // met twice
        }
        CHAT_LOG_CONN(info, id) << "dropped: outgoing queue full (slow consumer)";
        metrics_.dropped(metrics::DropReason::slow_consumer);
        member->second.peer->close(proto::CloseCode::policy_violation);
        leave(member);
    }
}

}  // namespace chat::hub
