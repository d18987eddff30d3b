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

/// Frames a queue gets at most in one round of the hub ahead of its writers,
/// and commands a round holds at most (see run()).
constexpr std::uint32_t frames_per_round = 64;
constexpr std::size_t commands_per_round = 4096;
/// Commands handled at most before the writers' turns are started again.
constexpr std::size_t commands_per_batch = 64;

/// Messages in one answer to a history request at most (rule 14).
constexpr std::size_t older_page = 100;

Frame serialise(const ChatRequest& message) {
    return std::make_shared<const std::string>(message.SerializeAsString());
}

/// The id of a serialised message, or 0 if it does not parse.
std::uint64_t id_of(const Frame& message) {
    ChatRequest parsed;
    return parsed.ParseFromString(*message) ? parsed.id() : 0;
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
      lobby_(rooms_.try_emplace("", "", limits.welcome_list_limit, ring_capacity()).first->second),
      presence_timer_(executor_),
      writers_(std::make_shared<WriteScheduler>(executor_, limits.writers_awake)) {
    // Where the lobby's count goes on, and its newest messages for joins and
    // resumes; a room's are read when someone joins it.
    auto start = history_.start(ring_capacity());
    epoch_ = std::move(start.epoch);
    restart_ring(lobby_, start.last_id, start.newest);
    lobby_.opened = true;  // held from the start, never let go of
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
        // queue for each, up to a batch: then the writers' turns start (a
        // long batch would hold back what it queued).
        Command command = std::move(received);
        bool more = true;
        for (std::size_t batch = 1; more; ++batch) {
            std::visit([this](auto& c) { handle(c); }, command);
            drop_slow_peers();
            ++since_idle_;
            more =
                !round_full_ && batch < commands_per_batch && since_idle_ < commands_per_round &&
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
        // writer not yet reached takes it in its turn), but the hub runs
        // ahead of its writers only until a queue has been given
        // frames_per_round frames (or commands_per_round commands passed):
        // then it waits until every writer it woke has written, so that no
        // queue gathers more than that between two turns. In the lobby that
        // is 64 messages; in small rooms, many more, each writer still
        // leaving with several frames a write.
        if (round_full_ || since_idle_ >= commands_per_round) {
            co_await wait_for_writers();
        }
        if (!writers_->busy()) {
            since_idle_ = 0;
            round_full_ = false;
            ++round_;
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
    // What is still unkept_ goes with the hub unless run() goes on after all
    // (its end comes here too, with everything handed over, and says so
    // last): its ids were given out.
    history_.stopped(std::none_of(unkept_.begin(), unkept_.end(), [](const auto& waiting) {
        return std::holds_alternative<Unkept>(waiting);
    }));
    commands_.reset();  // discards what is buffered
    commands_.close();
    presence_timer_.cancel();
    members_.clear();
    std::erase_if(rooms_, [](const auto& room) { return !room.first.empty(); });
    cached_.clear();
    cache_bytes_ = 0;
    busiest_.clear();
    lobby_.users.clear();
    lobby_.welcome_list.clear();
    lobby_.presence.clear();
    lobby_.online.clear();
    presence_due_.clear();
    too_slow_.clear();
    writers_->drop_owed();
    writers_->abandon();
}

void Hub::begin_stop() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    CHAT_LOG(info) << "hub stopping: closing " << members_.size() << " connections";
    // Rule 11: the users leave first (in a cluster, the other nodes announce
    // it), whether or not their clients answer the close. Each room's leave
    // is placed as it would be for a logout; nobody is sent it.
    for (auto& [id, member] : members_) {
        if (member.name.empty()) {
            continue;
        }
        for (auto seat = member.seats.size(); seat-- > 1;) {
            leave_room(member, member.seats[seat].room->name);
        }
        apply(sequencer_.leave(id, "", member.name));
    }
    for (auto& [id, member] : members_) {
        member.peer->close(proto::CloseCode::going_away);
    }
    if (members_.empty()) {
        commands_.close();
    }
}

Hub::Seat* Hub::Member::seat(const Room& room) noexcept {
    const auto found = std::find_if(seats.begin(), seats.end(),
                                    [&](const Seat& seat) { return seat.room == &room; });
    return found != seats.end() ? &*found : nullptr;
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
        post_message(member->second, command.room, std::move(command.content));
    }
}

void Hub::handle(HistoryRequest& command) {
    if (const auto member = members_.find(command.from); member != members_.end()) {
        request_history(member->second, command.room, command.before);
    }
}

void Hub::handle(Join& command) {
    if (const auto member = members_.find(command.from); member != members_.end()) {
        join_room(member->second, command);
    }
}

void Hub::handle(Leave& command) {
    const auto member = members_.find(command.from);
    if (member == members_.end()) {
        return;
    }
    if (!member->second.online()) {
        reply_error(member->second, "log in first", command.room);
        return;
    }
    const auto found = rooms_.find(command.room);
    const auto* seat = found != rooms_.end() ? member->second.seat(found->second) : nullptr;
    if (seat == nullptr || seat->leaving) {
        reply_error(member->second, "not in room", command.room);
        return;
    }
    // Also a join still waiting for its room to load: it never happens.
    leave_room(member->second, command.room, true);
    // The confirmation comes after every frame of the room queued for it, and
    // no frame of the room follows (rule 17).
    ChatRequest confirmation;
    confirmation.set_type("leave");
    confirmation.set_user_name(member->second.name);
    confirmation.set_room(std::move(command.room));
    send_to(member->second, confirmation);
}

void Hub::handle(RoomsRequest& command) {
    if (const auto member = members_.find(command.from); member != members_.end()) {
        answer_rooms(member->second);
    }
}

void Hub::handle(HistoryPage& command) {
    answer_history(command);
}

void Hub::handle(RoomsCounted& command) {
    const auto member = members_.find(command.peer);
    if (member == members_.end() || !member->second.online()) {
        return;
    }
    if (!command.rooms) {
        reply_error(member->second, "unavailable: the rooms cannot be counted now, try again");
        return;
    }
    ChatRequest answer;
    answer.set_type("rooms");
    auto& rooms = *answer.mutable_rooms();
    for (auto& [name, users] : *command.rooms) {
        rooms[std::move(name)] = users;
    }
    send_to(member->second, answer);
}

void Hub::handle(PresenceDue& /*command*/) {
    auto due = std::move(presence_due_);
    presence_due_.clear();
    for (const auto& name : due) {
        if (const auto room = rooms_.find(name); room != rooms_.end()) {
            flush_presence(room->second);
        }
    }
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
    auto& refused = member->second;
    switch (command.request) {
        case Refused::Request::login:
            if (refused.online()) {
                return;  // its answer was lost, but the join came through
            }
            // The client may try again. Its resume point stays: a join whose
            // answer was lost may still come through, and is resumed from it.
            refused.name.clear();
            break;
        case Refused::Request::join: {
            const auto found = rooms_.find(command.room);
            auto* seat = found != rooms_.end() ? refused.seat(found->second) : nullptr;
            if (seat == nullptr || seat->in) {
                return;  // it left meanwhile, or the join came through after all
            }
            const bool left = seat->leaving;  // and was told so: no error now
            unseat(refused, *seat);
            close_if_unseated(command.room);
            if (left) {
                return;
            }
            break;
        }
        case Refused::Request::message:
            break;
    }
    reply_error(refused, command.reason, command.room);
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
    restart_ring(lobby_, state.last_id, state.newest);
    lobby_.users.clear();
    lobby_.welcome_list.clear();
    lobby_.presence.clear();
    enter_users(lobby_, state.users);
    clock_.advance(state.stamp);
}

void Hub::enter_users(Room& room, std::vector<RoomState::User>& users) {
    // The room's order of joins is not in its state: by join time, then.
    std::sort(users.begin(), users.end(),
              [](const auto& a, const auto& b) { return a.joined < b.joined; });
    for (auto& user : users) {
        enter_room(room, std::move(user.name), std::move(user.joined), user.local);
    }
}

void Hub::restart_ring(Room& room, std::uint64_t last_id, std::vector<Frame>& newest) {
    room.last_id = last_id;
    room.ring.clear();
    auto id = last_id - newest.size();
    for (auto& message : newest) {
        room.ring.push(++id, std::move(message));
    }
    room.ring_whole = true;
}

bool Hub::refill(Room& room, std::vector<Frame>& newest) {
    if (newest.empty()) {
        room.ring_whole = true;  // the history keeps none below what it holds
        return true;
    }
    const auto last = id_of(newest.back());
    // A ring that filled up meanwhile holds the newest it can: whole too.
    if (!room.ring.full() && (last == 0 || !room.ring.prepend(last, std::move(newest)))) {
        CHAT_LOG(error) << "a room's newest messages read again do not reach those it holds";
        return false;
    }
    room.ring_whole = true;
    return true;
}

void Hub::cache(Room& room, std::uint64_t id, Frame message) {
    const auto before = static_cast<std::int64_t>(room.ring.bytes());
    room.ring.push(id, std::move(message));
    if (&room != &lobby_) {
        cached(room, static_cast<std::int64_t>(room.ring.bytes()) - before);
    }
}

void Hub::cached(Room& room, std::int64_t delta) {
    cache_bytes_ = static_cast<std::size_t>(static_cast<std::int64_t>(cache_bytes_) + delta);
    if (room.in_cache) {
        cached_.splice(cached_.begin(), cached_, room.cached);  // the latest active
    } else if (room.ring.size() > 0) {
        cached_.push_front(&room);
        room.cached = cached_.begin();
        room.in_cache = true;
    }
    while (cache_bytes_ > limits_.cache_bytes && !cached_.empty()) {
        Room& quiet = *cached_.back();
        if (&quiet == &room) {
            // It alone is over the bound: its oldest go.
            cache_bytes_ -= room.ring.bytes();
            room.ring.drop_oldest();
            cache_bytes_ += room.ring.bytes();
            room.ring_whole = false;
            if (room.ring.size() > 0) {
                continue;
            }
        } else {
            cache_bytes_ -= quiet.ring.bytes();
            quiet.ring.clear();
            quiet.ring_whole = false;
        }
        cached_.pop_back();
        quiet.in_cache = false;
    }
}

void Hub::restart_clients(const char* why) {
    CHAT_LOG(warning) << "closing " << lobby_.online.size()
                      << " users' connections with 1012: " << why;
    for (auto& [id, member] : members_) {
        member.peer->close(proto::CloseCode::service_restart);
        // Out of every room at once: the sequencer let go of this node's
        // users and rooms (its state is a new start), and a room must not
        // stay held by clients that are only closing.
        while (member.seats.size() > 1) {
            leave_seat(member, *member.seats.back().room);
        }
        if (member.online()) {
            // Its name, if any, is still left on unregister.
            leave_seat(member, lobby_);
        }
    }
    std::vector<std::string> held;
    for (const auto& [name, room] : rooms_) {
        if (&room != &lobby_) {
            held.push_back(name);
        }
    }
    for (const auto& name : held) {
        close_if_unseated(name);
    }
}

void Hub::log_in(Member& member, Login& login) {
    const auto id = member.peer->id();
    if (!member.name.empty()) {
        reply_error(member, member.online() ? "already logged in" : "login already under way");
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
    if (sequencer_.local() && lobby_.users.contains(login.name)) {
        CHAT_LOG_CONN(debug, id) << "login refused: name taken";
        reply_error(member, "name taken");
        return;
    }
    member.name = std::move(login.name);
    if (member.seats.empty()) {
        member.seats.emplace_back().room = &lobby_;
    }
    // Each login's own, never an earlier refused one's.
    auto& seat = member.seats.front();
    seat.resume.reset();
    if (login.last_seen > 0 && !login.epoch.empty()) {
        seat.resume = std::make_unique<Resume>(Resume{login.last_seen, std::move(login.epoch)});
    }
    apply(sequencer_.join(id, "", member.name, rfc3339_now()));
}

Hub::Room& Hub::room(const std::string& name) {
    return rooms_.try_emplace(name, name, limits_.welcome_list_limit, ring_capacity())
        .first->second;
}

void Hub::join_room(Member& member, Join& join) {
    if (!member.online()) {
        reply_error(member, "log in first", join.room);
        return;
    }
    if (stopping_) {
        reply_error(member, "unavailable: the server is shutting down", join.room);
        return;
    }
    if (!available()) {
        reply_error(member, "unavailable: the room cannot be reached, try again", join.room);
        return;
    }
    const auto found = rooms_.find(join.room);
    if (const auto* seat = found != rooms_.end() ? member.seat(found->second) : nullptr) {
        reply_error(member,
                    seat->leaving ? "busy: your last leave of this room is on its way, try again"
                                  : "already in room",
                    join.room);
        return;
    }
    if (member.seats.size() > limits_.max_rooms_per_user) {
        reply_error(member,
                    "too many rooms: at most " + std::to_string(limits_.max_rooms_per_user) +
                        " besides the lobby",
                    join.room);
        return;
    }
    auto& target = found != rooms_.end() ? found->second : room(join.room);
    Seat seat;
    seat.room = &target;
    if (join.last_seen > 0 && !join.epoch.empty()) {
        seat.resume = std::make_unique<Resume>(Resume{join.last_seen, std::move(join.epoch)});
    }
    member.seats.push_back(std::move(seat));
    ++target.seated;
    if (!target.loading && (!target.opened || !target.ring_whole)) {
        load(target);
    }
    if (target.loading) {
        target.waiting.push_back(member.peer->id());
        return;
    }
    member.seats.back().join_sent = true;
    apply(sequencer_.join(member.peer->id(), target.name, member.name, rfc3339_now()));
}

void Hub::load(Room& room) {
    room.loading = true;
    // Posted first: see request_history().
    const auto answer = [executor = executor_, this, name = room.name](RoomStart start) {
        asio::post(executor, [this, name, start = std::move(start)] {
            enqueue(RoomOpened{name, start});
        });
    };
    if (!room.opened) {
        // Not held: the history knows where it stands (and whether one more
        // room may exist). Nothing else happens in a room without users
        // meanwhile.
        after_unkept([this, name = room.name, answer] {
            history_.open_room(name, ring_capacity(), answer);
        });
        return;
    }
    // The cache let go of its newest: read again, after every message
    // still to be handed over. Messages go on meanwhile, into the ring.
    after_unkept([this, name = room.name, answer] {
        history_.read_before(
            name, UINT64_MAX, ring_capacity(),
            [answer](std::optional<std::vector<Frame>> messages) {
                RoomStart start;
                if (messages) {
                    start = {RoomStart::Outcome::opened, 0, std::move(*messages), {}, 0};
                }
                answer(std::move(start));
            });
    });
}

void Hub::handle(RoomOpened& opened) {
    const auto found = rooms_.find(opened.room);
    if (found == rooms_.end() || !found->second.loading) {
        return;  // cannot happen: a loading room stays until its answer
    }
    auto& target = found->second;
    target.loading = false;
    auto waiting = std::move(target.waiting);
    target.waiting.clear();
    auto& start = opened.start;
    const auto before = static_cast<std::int64_t>(target.ring.bytes());
    if (start.outcome == RoomStart::Outcome::opened && !target.opened) {
        target.opened = true;
        restart_ring(target, start.last_id, start.newest);
        enter_users(target, start.users);
        clock_.advance(start.stamp);
        metrics_.add(metrics_.rooms_with_users, 1);
    } else if (start.outcome == RoomStart::Outcome::opened && !refill(target, start.newest)) {
        start.outcome = RoomStart::Outcome::failed;
    }
    for (const auto peer : waiting) {
        const auto member = members_.find(peer);
        if (member == members_.end()) {
            continue;
        }
        auto* seat = member->second.seat(target);
        if (seat == nullptr || seat->in) {
            continue;  // it left meanwhile
        }
        if (start.outcome == RoomStart::Outcome::opened && !stopping_) {
            seat->join_sent = true;
            apply(sequencer_.join(peer, target.name, member->second.name, rfc3339_now()));
            continue;
        }
        unseat(member->second, *seat);
        reply_error(member->second,
                    stopping_ ? "unavailable: the server is shutting down"
                    : start.outcome == RoomStart::Outcome::too_many
                        ? "too many rooms: every room has users, try again later"
                        : "unavailable: the room could not be read, try again",
                    target.name);
    }
    // Within the cache's bound again, now that the joins are answered.
    cached(target, static_cast<std::int64_t>(target.ring.bytes()) - before);
    if (target.seated == 0) {
        if (target.opened) {
            close_room(target);  // everyone who waited left meanwhile
        } else {
            rooms_.erase(found);
        }
    }
}

void Hub::close_if_unseated(const std::string& name) {
    const auto found = rooms_.find(name);
    if (found != rooms_.end() && &found->second != &lobby_ && found->second.seated == 0 &&
        !found->second.loading) {
        close_room(found->second);
    }
}

void Hub::unseat(Member& member, Seat& seat) {
    --seat.room->seated;
    member.seats.erase(member.seats.begin() + (&seat - member.seats.data()));
}

void Hub::close_room(Room& room) {
    if (room.in_cache) {
        cache_bytes_ -= room.ring.bytes();
        cached_.erase(room.cached);
    }
    // In a cluster its users on other nodes stay: no longer counted here.
    if (!room.users.empty()) {
        busiest_.erase({room.users.size(), room.name});
        rooms_answer_.clear();
    }
    const auto name = room.name;  // erased by a key that is not the room's own
    after_unkept([this, name] { history_.vacate(name); });
    metrics_.add(metrics_.rooms_with_users, -1);
    rooms_.erase(name);
}

void Hub::leave_room(Member& member, const std::string& name, bool member_stays) {
    const auto found = rooms_.find(name);
    if (found == rooms_.end()) {
        return;
    }
    auto& target = found->second;
    auto* seat = member.seat(target);
    if (seat == nullptr) {
        return;
    }
    if (seat->leaving) {
        unseat(member, *seat);  // its leave went already
    } else if (!seat->in) {
        const bool join_sent = seat->join_sent;
        if (join_sent && member_stays) {
            // The seat stays, out of every fan-out, until the join or its
            // refusal comes back, so that a join again (refused meanwhile)
            // is never taken for this one.
            seat->leaving = true;
        } else {
            unseat(member, *seat);
        }
        if (join_sent) {
            // A shared sequencer has its join (which may yet come through):
            // the leave follows it there.
            apply(sequencer_.leave(member.peer->id(), name, member.name));
        }  // else its join waits for the room to load: it never happens
    } else {
        leave_seat(member, target);
        apply(sequencer_.leave(member.peer->id(), name, member.name));
    }
    close_if_unseated(name);
}

void Hub::post_message(Member& member, const std::string& room, std::string content) {
    if (room_of(member, room) == nullptr) {
        return;
    }
    if (!available()) {
        reply_error(member, "unavailable: the room cannot be reached, message not sent", room);
        return;
    }
    apply(sequencer_.say(member.peer->id(), room, member.name, std::move(content)));
}

Hub::Room* Hub::room_of(Member& member, const std::string& name) {
    if (!member.online()) {
        reply_error(member, "log in first", name);
        return nullptr;
    }
    if (name.empty()) {
        return &lobby_;
    }
    const auto found = rooms_.find(name);
    const auto* seat = found != rooms_.end() ? member.seat(found->second) : nullptr;
    if (seat == nullptr || !seat->in) {
        reply_error(member, "not in room", name);
        return nullptr;
    }
    return &found->second;
}

void Hub::apply(Sequencer::Placed placed) {
    if (placed) {
        apply(*placed);
    }
}

void Hub::apply(Event& event) {
    const auto found = rooms_.find(event.room);
    if (found == rooms_.end()) {
        // A room this node does not hold: a claim of one of its connections
        // can only be one that left meanwhile.
        if (event.kind == Event::Kind::join && event.local != 0) {
            apply(sequencer_.leave(event.local, event.room, event.name));
        }
        return;
    }
    if (!found->second.opened) {
        // A room being opened again: what was read while this node held it
        // before is not its state (the state comes with RoomOpened).
        return;
    }
    switch (event.kind) {
        case Event::Kind::join:
            apply_join(found->second, event);
            break;
        case Event::Kind::leave:
            apply_leave(found->second, event);
            break;
        case Event::Kind::message:
            apply_message(found->second, event);
            break;
    }
}

void Hub::take_seat(Room& room, Member& member, Seat& seat) {
    seat.in = true;
    seat.index = static_cast<std::uint32_t>(room.online.size());
    room.online.push_back(member.peer);
    if (&room == &lobby_) {
        metrics_.add(metrics_.users_online, 1);
    }
}

void Hub::leave_seat(Member& member, Room& room) {
    auto* seat = member.seat(room);
    if (seat == nullptr) {
        return;
    }
    if (seat->in) {
        // Swap-remove from the fan-out list, keeping the moved entry's index right.
        auto& slot = room.online[seat->index];
        slot = std::move(room.online.back());
        if (slot != nullptr && slot->id() != member.peer->id()) {
            members_.at(slot->id()).seat(room)->index = seat->index;
        }
        room.online.pop_back();
        if (&room == &lobby_) {
            metrics_.add(metrics_.users_online, -1);
        }
    }
    if (&room == &lobby_) {
        seat->in = false;  // the lobby's seat stays: a login may come again
    } else {
        unseat(member, *seat);
    }
}

void Hub::enter_room(Room& room, std::string name, std::string joined, PeerId local) {
    const auto before = room.users.size();
    // Replaces the entry of a join the room missed the leave of.
    room.welcome_list.join(name, joined);
    room.users.insert_or_assign(std::move(name), RoomUser{std::move(joined), local});
    recount(room, before);
}

void Hub::apply_join(Room& target, Event& join) {
    enter_room(target, join.name, join.text, join.local);
    const auto newcomer = join.local != 0 ? members_.find(join.local) : members_.end();
    auto* seat = newcomer != members_.end() ? newcomer->second.seat(target) : nullptr;
    const bool lobby = &target == &lobby_;
    if (seat != nullptr && seat->leaving) {
        // Its leave, sent after it, follows: nothing to do until then.
    } else if (seat != nullptr && !seat->in &&
               (newcomer->second.name == join.name || (lobby && newcomer->second.name.empty()))) {
        // Its claim (or one whose answer was lost with the sequencer) went through.
        auto& member = newcomer->second;
        member.name = join.name;
        take_seat(target, member, *seat);
        if (lobby) {
            CHAT_LOG_CONN(info, join.local)
                << "login \"" << member.name << "\" (" << lobby_.users.size() << " online)";
        } else {
            CHAT_LOG_CONN(debug, join.local)
                << "joined a room (" << target.users.size() << " users in it, " << rooms_.size() - 1
                << " rooms with users)";
        }
        welcome(member, target, join);
    } else if (join.local != 0) {
        // A shared sequencer's: a claim whose connection is gone, or took
        // another name meanwhile.
        apply(sequencer_.leave(join.local, join.room, join.name));
    }

    if (batching(target)) {
        note_presence(target, join.name, join.text);
        return;
    }
    flush_presence(target);  // what gathered goes first, in order
    ChatRequest notice;
    notice.set_type(lobby ? "login" : "join");
    notice.set_user_name(join.name);
    notice.set_room(target.name);
    (*notice.mutable_user_list())[join.name] = join.text;
    fan_out(target, notice, join.local, join.stamp);
}

void Hub::welcome(Member& member, Room& room, const Event& join) {
    // The newcomer gets the whole list once; everybody else the one new entry.
    ChatRequest welcome;
    welcome.set_type(&room == &lobby_ ? "login" : "join");
    welcome.set_user_name(member.name);
    welcome.set_room(room.name);
    welcome.set_id(room.last_id);
    welcome.set_epoch(epoch_);
    // Rules 13 and 17: right after the welcome, with nothing in between, the
    // messages the newcomer is owed: since the id it saw last if it comes
    // back within this epoch, else the newest few.
    const auto resume = std::move(member.seat(room)->resume);  // used once: not kept
    const bool resumes = resume && resume->epoch == epoch_ && resume->id <= room.last_id;
    const auto owed = resumes ? room.ring.after(resume->id, limits_.resume_limit)
                              : room.ring.newest(limits_.history_on_join);
    const FanOut fan_out(clock_, join.stamp);
    welcome.set_timestamp(fan_out.stamp());
    const std::array frames{welcome_frame(room, welcome),
                            history_frame(owed, fan_out.stamp(), room.name)};
    deliver(member.peer, frames);
}

Frame Hub::welcome_frame(const Room& room, ChatRequest& welcome) const {
    // The kept list: the latest to join, serialised as they joined. In a big
    // room (rule 16) it is what the welcome lists, with the count of users
    // online; in a small one it is the whole room if it holds it all.
    const bool whole_room_kept = room.users.size() <= room.welcome_list.size();
    if (batching(room)) {
        welcome.set_content(std::to_string(room.users.size()));
    } else if (!whole_room_kept) {
        // A small room larger than the kept list (--welcome-list-limit below
        // --presence-batch-above): listed from the room itself.
        auto& list = *welcome.mutable_user_list();
        for (const auto& [name, user] : room.users) {
            list[name] = user.joined;
        }
        return serialise(welcome);
    }
    auto bytes = welcome.SerializeAsString();
    bytes.append(room.welcome_list.entries());
    return std::make_shared<const std::string>(std::move(bytes));
}

void Hub::note_presence(Room& room, const std::string& name, const std::string& joined) {
    const auto [change, added] =
        room.presence.try_emplace(name, PresenceChange{joined, joined.empty()});
    if (!added) {
        if (joined.empty() && !change->second.was_online) {
            room.presence.erase(change);  // joined and left within the interval: neither
        } else {
            change->second.joined = joined;  // the latest join time, or left
        }
    }
    if (room.presence.size() == 1 && added) {
        presence_due_.push_back(room.name);
        if (presence_due_.size() == 1) {
            presence_timer_.expires_after(limits_.presence_interval);
            presence_timer_.async_wait([this](error_code ec) {
                if (!ec) {  // else cancelled: the hub is gone
                    enqueue(PresenceDue{});
                }
            });
        }
    }
}

void Hub::flush_presence(Room& room) {
    if (room.presence.empty()) {
        return;
    }
    // Still listed in presence_due_: PresenceDue then finds it empty.
    ChatRequest presence;
    presence.set_type("presence");
    presence.set_room(room.name);
    auto& changes = *presence.mutable_user_list();
    for (auto& [name, change] : room.presence) {
        changes[name] = std::move(change.joined);
    }
    room.presence.clear();
    if (!stopping_) {
        fan_out(room, presence);
    }
}

void Hub::apply_leave(Room& target, const Event& leave) {
    const auto user = target.users.find(leave.name);
    if (user == target.users.end()) {
        return;
    }
    const auto member = members_.find(user->second.local);
    target.welcome_list.leave(leave.name);
    target.users.erase(user);
    recount(target, target.users.size() + 1);
    const bool lobby = &target == &lobby_;
    bool seat_left = false;  // a leaving seat of this node, whose join and leave are both through
    if (member != members_.end() && member->second.name == leave.name) {
        auto* seat = member->second.seat(target);
        if (seat != nullptr && seat->in && lobby && !stopping_) {
            // Rule 15: the others took this node for dead and announced its
            // users gone while it was cut off.
            restart_clients("the other nodes announced this node's users gone");
        } else if (seat != nullptr && seat->leaving) {
            unseat(member->second, *seat);
            seat_left = true;
        }
    }
    if (batching(target)) {
        note_presence(target, leave.name, {});
    } else {
        flush_presence(target);
        if (!stopping_) {
            ChatRequest notice;
            notice.set_type(lobby ? "logout" : "leave");
            notice.set_user_name(leave.name);
            notice.set_room(target.name);
            fan_out(target, notice, 0, leave.stamp);
        }
    }
    if (seat_left) {
        close_if_unseated(leave.room);
    }
}

void Hub::apply_message(Room& target, Event& event) {
    // A local sequencer leaves the numbering to the room.
    const auto id = event.id != 0 ? event.id : target.last_id + 1;
    ChatRequest message;
    message.set_type("message");
    message.set_user_name(std::move(event.name));
    message.set_content(std::move(event.text));
    message.set_id(id);
    message.set_room(target.name);
    target.last_id = id;
    keep(target, id, fan_out(target, message, 0, event.stamp));
    metrics_.add(metrics_.messages_broadcast);
}

void Hub::keep(Room& room, std::uint64_t id, const Frame& message) {
    cache(room, id, message);
    // Behind those already waiting, so that the history keeps the id order.
    if (!unkept_.empty() || !history_.try_append(room.name, id, message)) {
        unkept_.emplace_back(Unkept{room.name, id, message});
    }
}

void Hub::after_unkept(std::function<void()> call) {
    if (unkept_.empty()) {
        call();
    } else {
        unkept_.emplace_back(std::move(call));
    }
}

awaitable<void> Hub::flush_unkept() {
    // The store's queue is full: the disk lags behind the rooms. The hub slows
    // down (no new command until these are taken) rather than lose any.
    asio::steady_timer retry(executor_);
    while (!unkept_.empty()) {
        if (auto* call = std::get_if<std::function<void()>>(&unkept_.front())) {
            const auto deferred = std::move(*call);
            unkept_.pop_front();
            deferred();
            continue;
        }
        const auto& message = std::get<Unkept>(unkept_.front());
        if (history_.try_append(message.room, message.id, message.message)) {
            unkept_.pop_front();
            continue;
        }
        retry.expires_after(std::chrono::milliseconds(1));
        co_await retry.async_wait(use_nothrow);
    }
}

void Hub::request_history(Member& member, const std::string& room, std::uint64_t before) {
    auto* target = room_of(member, room);
    if (target == nullptr) {
        return;
    }
    if (!available()) {
        reply_error(member, "history unavailable: the room cannot be reached, try again", room);
        return;
    }
    if (member.history_pending) {
        // Rule 14: one page at a time, so that a connection has at most one
        // read in the store's queue and one page in the making. A client that
        // floods requests and never reads gets this for most of them, and
        // the byte bound of its queue (rule 9) drops it once the pages it was
        // sent fill it.
        reply_error(member, "busy: the answer to your last history request is on its way", room);
        return;
    }
    member.history_pending = true;
    // The answer is for this membership of the room: one that comes after
    // a leave (and a join again) is not sent.
    auto& seat = *member.seat(*target);
    seat.history_request = ++history_requests_ == 0 ? ++history_requests_ : history_requests_;
    metrics_.add(metrics_.history_requests);
    // Read off the hub's strand; the answer comes back as a command, in
    // request order. Posted first, from the store's thread: a late answer
    // (the server stopping) goes to a stopped io_context and never runs, and
    // touches nothing of the hub, which may be gone by then.
    after_unkept([this, room, before, peer = member.peer->id(), request = seat.history_request] {
        history_.read_before(
            room, before, older_page,
            [executor = executor_, this, peer, room,
             request](std::optional<std::vector<Frame>> messages) {
                asio::post(executor, [this, peer, room, request, messages = std::move(messages)] {
                    enqueue(HistoryPage{peer, room, request, messages});
                });
            });
    });
}

void Hub::answer_history(HistoryPage& page) {
    const auto member = members_.find(page.peer);
    if (member == members_.end()) {
        return;  // gone meanwhile
    }
    member->second.history_pending = false;
    const auto found = rooms_.find(page.room);
    auto* seat = found != rooms_.end() ? member->second.seat(found->second) : nullptr;
    if (seat == nullptr || !seat->in || seat->history_request != page.request) {
        return;  // it left the room meanwhile: no frame of it follows the leave
    }
    seat->history_request = 0;
    if (page.messages) {
        const FanOut fan_out(clock_);
        const std::array frames{history_frame(*page.messages, fan_out.stamp(), page.room)};
        deliver(member->second.peer, frames);
    } else {
        reply_error(member->second, "history unavailable: try again", page.room);
    }
}

void Hub::answer_rooms(Member& member) {
    if (!member.online()) {
        reply_error(member, "log in first");
        return;
    }
    if (sequencer_.count_rooms(member.peer->id())) {
        return;  // it knows the rooms of every node, and answers (RoomsCounted)
    }
    // Made again only after a change: clients that ask often cost a copy.
    if (rooms_answer_.empty()) {
        ChatRequest answer;
        answer.set_type("rooms");
        auto& rooms = *answer.mutable_rooms();
        // The most populated first, at most this many (rule 17).
        constexpr std::size_t listed = 1000;
        for (const auto& [users, name] : busiest_) {
            if (rooms.size() == listed) {
                break;
            }
            rooms[std::string(name)] = users;
        }
        rooms_answer_ = answer.SerializeAsString();
    }
    // Its own stamp, appended: a field that comes later is read all the same.
    const FanOut fan_out(clock_);
    ChatRequest stamp;
    stamp.set_timestamp(fan_out.stamp());
    const std::array frame{
        std::make_shared<const std::string>(rooms_answer_ + stamp.SerializeAsString())};
    deliver(member.peer, frame);
}

void Hub::recount(const Room& room, std::size_t before) {
    const auto now = room.users.size();
    if (&room == &lobby_ || now == before) {
        return;
    }
    if (before > 0) {
        busiest_.erase({before, room.name});
    }
    if (now > 0) {
        busiest_.emplace(now, room.name);
    }
    rooms_answer_.clear();
}

void Hub::leave(Members::iterator member) {
    auto& leaving = member->second;
    // Out of every room's fan-out first: no leave notice goes to the leaver.
    const bool online = leaving.online();
    for (auto seat = leaving.seats.size(); seat-- > 1;) {
        leave_room(leaving, leaving.seats[seat].room->name);
    }
    if (online) {
        leave_seat(leaving, lobby_);
        CHAT_LOG_CONN(info, member->first) << "logout \"" << leaving.name << "\"";
    }
    // Once stopping, begin_stop() has placed every user's leave already.
    if (!leaving.name.empty() && !stopping_) {
        apply(sequencer_.leave(member->first, "", leaving.name));
    }
    members_.erase(member);
}

Frame Hub::fan_out(Room& room, ChatRequest& message, PeerId except, std::int64_t stamp) {
    const FanOut fan_out(clock_, stamp);
    message.set_timestamp(fan_out.stamp());
    const std::array frame{serialise(message)};
    for (const auto& peer : room.online) {
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

void Hub::reply_error(Member& member, const std::string& reason, const std::string& room) {
    ChatRequest error;
    error.set_type("error");
    error.set_content(reason);
    error.set_room(room);
    send_to(member, error);
}

void Hub::deliver(const std::shared_ptr<Peer>& peer, std::span<const Frame> frames) {
    if (peer->queued_in_round(round_, frames.size()) >= frames_per_round) {
        round_full_ = true;
    }
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
