#include "chat/hub/hub.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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
         History& history, const HubLimits& limits, Sequencer* sequencer)
    : executor_(std::move(executor)),
      metrics_(metrics),
      clock_(clock),
      history_(history),
      limits_(limits),
      sequencer_(sequencer != nullptr ? *sequencer : local_),
      commands_(executor_, limits.capacity),
      welcome_list_(limits.welcome_list_limit),
      presence_timer_(executor_),
      writers_(std::make_shared<WriteScheduler>(executor_, limits.writers_awake)),
      ring_(ring_capacity()) {
    // Where the count goes on, and the newest messages for joins and resumes.
    auto start = history_.start(ring_capacity());
    epoch_ = std::move(start.epoch);
    local_.start_after(start.last_id);
    restart_ring(start.last_id, start.newest);
    // A cluster node takes logins once it has joined the room.
    available_ = sequencer_.local();
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
    enqueue(Stop{});
}

void Hub::enqueue(Command command) {
    if (commands_.try_send(error_code{}, std::move(command))) {
        return;
    }
    if (!commands_.is_open()) {
        return;  // the hub has stopped: nothing is owed any more
    }
    // Full: the loop is busy with what is ahead, and this waits its turn.
    // Each source has at most one such command waiting (one timer, one
    // stop, one page per connection), so these waits are bounded too.
    // A failed try_send moves nothing (Asio's channel_service::try_send).
    asio::co_spawn(
        executor_,
        // NOLINTNEXTLINE(bugprone-use-after-move)
        [this, command = std::move(command)]() mutable -> awaitable<void> {
            co_await commands_.async_send(error_code{}, std::move(command), use_nothrow);
        },
        asio::detached);
}

awaitable<void> Hub::run() {
    sequencer_.attach(*this);
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
        writers_->start_turns();
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
    co_await sequencer_.detach();  // a cluster's: the leaves of this node's users, announced
    // A Register received just as stop() closed the channel made a member
    // that can no longer unregister (its session is closed with 1001 all the
    // same), and Asio's close() keeps buffered commands: let go of both.
    abandon();
    CHAT_LOG(debug) << "hub stopped";
}

awaitable<void> Hub::wait_for_writers() {
    while (writers_->busy()) {
        // Awaited into a local (docs/architecture.md, trap 1).
        const auto overdue = co_await writers_->until_idle(limits_.turn_limit);
        for (const auto& peer : overdue) {
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
        writers_->start_turns();
    }
}

void Hub::abandon() {
    // What is still unkept_ goes with the hub (run()'s end comes here too,
    // with everything handed over): the history compares with what it keeps.
    history_.stopped(last_message_id_);
    commands_.reset();  // discards what is buffered
    commands_.close();
    presence_timer_.cancel();
    members_.clear();
    room_.clear();
    welcome_list_.clear();
    presence_.clear();
    online_.clear();
    too_slow_.clear();
    writers_->drop_owed();
}

void Hub::begin_stop() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    CHAT_LOG(info) << "hub stopping: closing " << members_.size() << " connections";
    // Rule 11: the users leave first (in a cluster, the other nodes announce
    // it), whether or not their clients answer the close.
    for (auto& [id, member] : members_) {
        if (!member.name.empty()) {
            apply(sequencer_.leave(id, member.name));
        }
    }
    for (auto& [id, member] : members_) {
        member.peer->close(proto::CloseCode::going_away);
    }
    if (members_.empty()) {
        commands_.close();
    }
}

void Hub::handle(Register& command) {
    auto& peer = *command.peer;
    Member member;
    member.peer = std::move(command.peer);
    members_.try_emplace(peer.id(), std::move(member));
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

void Hub::handle(Login& command) {
    if (const auto member = members_.find(command.from); member != members_.end()) {
        log_in(member->second, command);
    }  // else dropped as too slow while this was on its way
}

void Hub::handle(Say& command) {
    if (const auto member = members_.find(command.from); member != members_.end()) {
        post_message(member->second, std::move(command.content));
    }
}

void Hub::handle(HistoryRequest& command) {
    if (const auto member = members_.find(command.from); member != members_.end()) {
        request_history(member->second, command.before);
    }
}

void Hub::handle(HistoryPage& command) {
    answer_history(command.peer, command.messages);
}

void Hub::handle(PresenceDue& /*command*/) {
    flush_presence();
}

void Hub::handle(Stop& /*command*/) {
    begin_stop();
}

void Hub::handle(Sequenced& command) {
    for (auto& event : command.events) {
        apply(event);
    }
    clock_.advance(command.now);
}

void Hub::handle(Refused& command) {
    const auto member = members_.find(command.peer);
    if (member == members_.end()) {
        return;
    }
    if (command.login && member->second.online) {
        return;  // its answer was lost, but the join came through
    }
    if (command.login) {
        // The client may try again. Its resume point stays: a join whose
        // answer was lost may still come through, and is resumed from it.
        member->second.name.clear();
    }
    reply_error(member->second, command.reason);
}

void Hub::handle(Reachability& command) {
    if (command.state) {
        if (command.reset) {
            restart_clients("the room's state was lost");
        }
        adopt(*command.state);
    }
    if (available_.exchange(command.up) != command.up) {
        if (command.up) {
            CHAT_LOG(info) << "the room can be reached: taking logins and messages";
        } else {
            CHAT_LOG(warning) << "the room cannot be reached: refusing logins and messages";
        }
    }
}

void Hub::adopt(RoomState& state) {
    epoch_ = std::move(state.epoch);
    restart_ring(state.last_id, state.newest);
    room_.clear();
    welcome_list_.clear();
    presence_.clear();
    // The room's order of joins is not in its state: by join time, then.
    std::sort(state.users.begin(), state.users.end(),
              [](const auto& a, const auto& b) { return a.joined < b.joined; });
    for (auto& user : state.users) {
        enter_room(std::move(user.name), std::move(user.joined), user.local);
    }
    clock_.advance(state.stamp);
}

void Hub::restart_ring(std::uint64_t last_id, std::vector<Frame>& newest) {
    last_message_id_ = last_id;
    ring_ = MessageRing(ring_capacity());
    auto id = last_id - newest.size();
    for (auto& message : newest) {
        ring_.push(++id, std::move(message));
    }
}

void Hub::restart_clients(const char* why) {
    CHAT_LOG(warning) << "closing " << online_.size() << " users' connections with 1012: " << why;
    for (auto& [id, member] : members_) {
        member.peer->close(proto::CloseCode::service_restart);
        member.online = false;  // its name, if any, is still left on unregister
    }
    metrics_.add(metrics_.users_online, -static_cast<std::int64_t>(online_.size()));
    online_.clear();
}

void Hub::log_in(Member& member, Login& login) {
    const auto id = member.peer->id();
    if (!member.name.empty()) {
        reply_error(member, member.online ? "already logged in" : "login already under way");
        return;
    }
    if (stopping_) {
        // Every user's leave is placed already: a name it frees now would
        // be taken twice while its owner's connection is still closing.
        reply_error(member, "unavailable: the server is shutting down");
        return;
    }
    if (!available()) {
        reply_error(member, "unavailable: the room cannot be reached, try again");
        return;
    }
    // In a cluster the room here is a replica that may lag behind Redis: a
    // name it still lists may be free there already, so only Redis refuses.
    if (sequencer_.local() && room_.contains(login.name)) {
        CHAT_LOG_CONN(debug, id) << "login refused: name taken";
        reply_error(member, "name taken");
        return;
    }
    member.name = std::move(login.name);
    // Each login's own, never an earlier refused one's.
    member.resume.reset();
    if (login.last_seen > 0 && !login.epoch.empty()) {
        member.resume = std::make_unique<Member::Resume>(
            Member::Resume{login.last_seen, std::move(login.epoch)});
    }
    apply(sequencer_.join(id, member.name, rfc3339_now()));
}

void Hub::post_message(Member& member, std::string content) {
    if (!member.online) {
        reply_error(member, "log in first");
        return;
    }
    if (!available()) {
        reply_error(member, "unavailable: the room cannot be reached, message not sent");
        return;
    }
    apply(sequencer_.say(member.peer->id(), member.name, std::move(content)));
}

void Hub::apply(Sequencer::Placed placed) {
    if (placed) {
        apply(*placed);
    }
}

void Hub::apply(Event& event) {
    switch (event.kind) {
        case Event::Kind::join:
            apply_join(event);
            break;
        case Event::Kind::leave:
            apply_leave(event);
            break;
        case Event::Kind::message:
            apply_message(event);
            break;
    }
}

void Hub::set_online(Member& member) {
    member.online = true;
    member.online_index = online_.size();
    online_.push_back(member.peer);
    metrics_.add(metrics_.users_online, 1);
}

void Hub::enter_room(std::string name, std::string joined, PeerId local) {
    welcome_list_.join(name, joined);  // replaces the entry of a join the room missed the leave of
    room_.insert_or_assign(std::move(name), RoomUser{std::move(joined), local});
}

void Hub::apply_join(Event& join) {
    enter_room(join.name, join.text, join.local);
    const auto newcomer = join.local != 0 ? members_.find(join.local) : members_.end();
    if (newcomer != members_.end() && !newcomer->second.online &&
        (newcomer->second.name == join.name || newcomer->second.name.empty())) {
        // Its claim (or one whose answer was lost with the sequencer) went through.
        auto& member = newcomer->second;
        member.name = join.name;
        set_online(member);
        CHAT_LOG_CONN(info, join.local)
            << "login \"" << member.name << "\" (" << room_.size() << " online)";

        // The newcomer gets the whole list once; everybody else the one new entry.
        ChatRequest welcome;
        welcome.set_type("login");
        welcome.set_user_name(member.name);
        welcome.set_id(last_message_id_);
        welcome.set_epoch(epoch_);
        // Rule 13: right after the welcome, with nothing in between, the messages
        // the newcomer is owed: since the id it saw last if it comes back within
        // this epoch, else the newest few.
        const auto resume = std::move(member.resume);  // used once: not kept
        const bool resumes = resume && resume->epoch == epoch_ && resume->id <= last_message_id_;
        const auto owed = resumes ? ring_.after(resume->id, limits_.resume_limit)
                                  : ring_.newest(limits_.history_on_join);
        const FanOut fan_out(clock_, join.stamp);
        welcome.set_timestamp(fan_out.stamp());
        const std::array frames{welcome_frame(welcome), history_frame(owed, fan_out.stamp())};
        deliver(member.peer, frames);
    } else if (join.local != 0) {
        // A shared sequencer's: a claim whose connection is gone, or took
        // another name meanwhile.
        apply(sequencer_.leave(join.local, join.name));
    }

    if (batching()) {
        note_presence(join.name, join.text);
        return;
    }
    flush_presence();  // what gathered goes first, in order
    ChatRequest notice;
    notice.set_type("login");
    notice.set_user_name(join.name);
    (*notice.mutable_user_list())[join.name] = join.text;
    fan_out(notice, join.local, join.stamp);
}

Frame Hub::welcome_frame(ChatRequest& welcome) const {
    // The kept list: the latest to join, serialised as they joined. In a big
    // room (rule 16) it is what the welcome lists, with the count of users
    // online; in a small one it is the whole room if it holds it all.
    const bool whole_room_kept = room_.size() <= welcome_list_.size();
    if (batching()) {
        welcome.set_content(std::to_string(room_.size()));
    } else if (!whole_room_kept) {
        // A small room larger than the kept list (--welcome-list-limit below
        // --presence-batch-above): listed from the room itself.
        auto& list = *welcome.mutable_user_list();
        for (const auto& [name, user] : room_) {
            list[name] = user.joined;
        }
        return serialise(welcome);
    }
    auto bytes = welcome.SerializeAsString();
    bytes.append(welcome_list_.entries());
    return std::make_shared<const std::string>(std::move(bytes));
}

void Hub::note_presence(const std::string& name, const std::string& joined) {
    const auto [change, added] =
        presence_.try_emplace(name, PresenceChange{joined, joined.empty()});
    if (!added) {
        if (joined.empty() && !change->second.was_online) {
            presence_.erase(change);  // joined and left within the interval: neither
        } else {
            change->second.joined = joined;  // the latest join time, or left
        }
    }
    if (presence_.size() == 1 && added) {
        presence_timer_.expires_after(limits_.presence_interval);
        presence_timer_.async_wait([this](error_code ec) {
            if (!ec) {  // else cancelled: flushed already, or the hub is gone
                enqueue(PresenceDue{});
            }
        });
    }
}

void Hub::flush_presence() {
    if (presence_.empty()) {
        return;
    }
    presence_timer_.cancel();
    ChatRequest presence;
    presence.set_type("presence");
    auto& changes = *presence.mutable_user_list();
    for (auto& [name, change] : presence_) {
        changes[name] = std::move(change.joined);
    }
    presence_.clear();
    if (!stopping_) {
        fan_out(presence);
    }
}

void Hub::apply_leave(const Event& leave) {
    const auto user = room_.find(leave.name);
    if (user == room_.end()) {
        return;
    }
    const auto member = members_.find(user->second.local);
    welcome_list_.leave(leave.name);
    room_.erase(user);
    if (member != members_.end() && member->second.online && member->second.name == leave.name &&
        !stopping_) {
        // Rule 15: the others took this node for dead and announced its users
        // gone while it was cut off.
        restart_clients("the other nodes announced this node's users gone");
    }
    if (batching()) {
        note_presence(leave.name, {});
        return;
    }
    flush_presence();
    if (!stopping_) {
        ChatRequest notice;
        notice.set_type("logout");
        notice.set_user_name(leave.name);
        fan_out(notice, 0, leave.stamp);
    }
}

void Hub::apply_message(Event& event) {
    ChatRequest message;
    message.set_type("message");
    message.set_user_name(std::move(event.name));
    message.set_content(std::move(event.text));
    message.set_id(event.id);
    last_message_id_ = event.id;
    keep(event.id, fan_out(message, 0, event.stamp));
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
    if (!member.online) {
        reply_error(member, "log in first");
        return;
    }
    if (!available()) {
        reply_error(member, "history unavailable: the room cannot be reached, try again");
        return;
    }
    if (member.history_pending) {
        // Rule 14: one page at a time, so that a connection has at most one
        // read in the store's queue and one page in the making. A client that
        // floods requests and never reads gets this for most of them, and
        // the byte bound of its queue (rule 9) drops it once the pages it was
        // sent fill it.
        reply_error(member, "busy: the answer to your last history request is on its way");
        return;
    }
    member.history_pending = true;
    metrics_.add(metrics_.history_requests);
    // Read off the hub's strand; the answer comes back as a command, in
    // request order. Posted first, from the store's thread: a late answer
    // (the server stopping) goes to a stopped io_context and never runs, and
    // touches nothing of the hub, which may be gone by then.
    history_.read_before(before, older_page,
                         [executor = executor_, this,
                          peer = member.peer->id()](std::optional<std::vector<Frame>> messages) {
                             asio::post(executor, [this, peer, messages = std::move(messages)] {
                                 enqueue(HistoryPage{peer, messages});
                             });
                         });
}

void Hub::answer_history(PeerId peer, const std::optional<std::vector<Frame>>& messages) {
    const auto member = members_.find(peer);
    if (member == members_.end()) {
        return;  // gone meanwhile
    }
    member->second.history_pending = false;
    if (messages) {
        const FanOut fan_out(clock_);
        const std::array frames{history_frame(*messages, fan_out.stamp())};
        deliver(member->second.peer, frames);
    } else {
        reply_error(member->second, "history unavailable: try again");
    }
}

void Hub::leave(Members::iterator member) {
    auto& leaving = member->second;
    if (leaving.online) {
        // Swap-remove from the fan-out list, keeping the moved entry's index right.
        auto& slot = online_[leaving.online_index];
        slot = std::move(online_.back());
        members_.at(slot->id()).online_index = leaving.online_index;
        online_.pop_back();
        leaving.online = false;
        metrics_.add(metrics_.users_online, -1);
        CHAT_LOG_CONN(info, member->first) << "logout \"" << leaving.name << "\"";
    }
    // Once stopping, begin_stop() has placed every user's leave already.
    if (!leaving.name.empty() && !stopping_) {
        apply(sequencer_.leave(member->first, leaving.name));
    }
    members_.erase(member);
}

Frame Hub::fan_out(ChatRequest& message, PeerId except, std::int64_t stamp) {
    const FanOut fan_out(clock_, stamp);
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
    bool ring_owed = false;
    if (peer->frames().try_push_held(frames, ring_owed) == FrameQueue::Push::full) {
        too_slow_.push_back(peer->id());
    }
    if (ring_owed) {
        writers_->owe(peer);
    }
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
