#include "chat/cluster/redis_cluster.hpp"

#include <algorithm>
#include <charconv>
#include <random>
#include <utility>

#include <hiredis/hiredis.h>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "chat/chat.pb.h"
#include "chat/hub/hub.hpp"
#include "chat/logging/log.hpp"
#include "event_decoding.hpp"
#include "redis_connection.hpp"
#include "scripts.hpp"

namespace chat::cluster {

using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

namespace {

enum Script : std::size_t {
    join,
    message,
    leave,
    open,
    vacate,
    lease,
    goodbye,
    sync,
    probe,
    page,
    script_count
};

/// Each script's text after the prelude: the rooms' helpers where it needs
/// them (a message and a probe do not, and are the most frequent calls).
std::string script_text(Script script) {
    static constexpr std::array<const char*, script_count> bodies{
        scripts::join,  scripts::message, scripts::leave, scripts::open,  scripts::vacate,
        scripts::lease, scripts::goodbye, scripts::sync,  scripts::probe, scripts::page};
    const bool rooms = script != Script::message && script != Script::probe;
    return std::string(scripts::prelude) + (rooms ? scripts::rooms_prelude : "") +
           bodies.at(script);
}

/// How long one XREAD waits for events; then the node asks for a stamp.
constexpr auto read_block = 1000ms;
/// Events one XREAD takes at most.
constexpr const char* read_count = "1000";
/// The first reconnection delay; it doubles up to Timing::last_backoff,
/// with jitter.
constexpr auto first_backoff = 100ms;

const char* const unavailable_login = "unavailable: the room cannot be reached, try again";
const char* const unavailable_message = "unavailable: the room cannot be reached, message not sent";
const char* const busy_message = "unavailable: the room is overloaded, message not sent";
const char* const unavailable_join = "unavailable: the room cannot be reached, try again";

/// A random token that names this process among those that ever used its
/// node id.
std::string make_incarnation() {
    return hub::new_epoch();
}

/// A kept message as the frame that was broadcast.
hub::Frame message_frame(const KeptMessage& kept) {
    ChatRequest message;
    message.set_type("message");
    message.set_user_name(std::string(kept.name));
    message.set_content(std::string(kept.content));
    message.set_id(kept.id);
    message.set_timestamp(kept.stamp);
    return std::make_shared<const std::string>(message.SerializeAsString());
}

/// `peer` of `owner_node`/`owner_incarnation` as a connection of this
/// process (`node`, `incarnation`), or 0 for another node's (or an earlier
/// process's under this node's id).
hub::PeerId peer_on(std::string_view node, std::string_view incarnation,
                    std::string_view owner_node, std::string_view owner_incarnation,
                    std::string_view peer) {
    return owner_node == node && owner_incarnation == incarnation ? to_number(peer) : 0;
}

std::vector<hub::RoomState::User> users_of(const RoomSnapshot& room, std::string_view node,
                                           std::string_view incarnation) {
    std::vector<hub::RoomState::User> users;
    users.reserve(room.users.size());
    for (const auto& user : room.users) {
        users.push_back({std::string(user.name), std::string(user.owner.joined),
                         peer_on(node, incarnation, user.owner.node, user.owner.incarnation,
                                 user.owner.connection)});
    }
    return users;
}

std::vector<hub::Frame> newest_of(const RoomSnapshot& room) {
    std::vector<hub::Frame> newest;
    newest.reserve(room.newest.size());
    for (const auto& message : room.newest) {
        newest.push_back(message_frame(message));
    }
    return newest;
}

}  // namespace

RedisCluster::RedisCluster(const asio::any_io_executor& executor, Config config,
                           metrics::Metrics& metrics)
    : strand_(asio::make_strand(executor)),
      config_(std::move(config)),
      timing_(config_.node_timeout),
      incarnation_(make_incarnation()),
      metrics_(metrics),
      commands_(std::make_unique<RedisConnection>(strand_, config_.node_id + ":commands")),
      events_(std::make_unique<RedisConnection>(strand_, config_.node_id + ":events")),
      leases_(std::make_unique<RedisConnection>(strand_, config_.node_id + ":leases")),
      lease_timer_(strand_),
      backoff_timer_(strand_),
      unblock_timer_(strand_),
      random_(std::random_device{}()) {
    reading_.emplace("", Reading{room_key({}, "events")});
}

RedisCluster::~RedisCluster() = default;

Timing::Timing(std::chrono::milliseconds node_timeout)
    : renew(node_timeout / 6),
      call_limit(std::min<std::chrono::milliseconds>(3000ms, node_timeout / 4)),
      lease(2 * renew + call_limit),
      sweep_after(node_timeout),
      last_backoff(std::min<std::chrono::milliseconds>(2000ms, node_timeout / 4)) {}

void RedisCluster::attach(hub::Hub& hub) {
    asio::post(strand_, [this, &hub] {
        hub_ = &hub;
        asio::co_spawn(strand_, run(), [this](const std::exception_ptr& e) {
            if (e && !detached_) {
                // The node would look alive with nobody reading the room:
                // out of IoContexts::run(), and the process exits 1.
                CHAT_LOG(error) << "cluster: the loop that talks to redis failed: "
                                << logging::describe(e);
                std::rethrow_exception(e);
            }
        });
    });
}

awaitable<void> RedisCluster::run() {
    auto backoff = first_backoff;
    bool first = true;
    while (!detached_) {
        // Awaited one at a time into locals (docs/architecture.md, trap 1).
        const bool connected = co_await connect();
        if (connected) {
            // The lease is kept alive from the connect on, also while the
            // node joins the room (a slow sync must not let it lapse). Both
            // end when any connection fails (lost() closes them all).
            const bool joined = co_await (serve(first) && keep_lease());
            if (joined) {
                first = false;
                backoff = first_backoff;
            }
            // Rooms opened that the reader did not hand over: their joins
            // are refused now rather than wait for Redis, and the rooms owed.
            for (auto& opened : std::exchange(opened_, {})) {
                reading_.erase(opened.opened.room);
                owed_.push_back(Owed{0, {}, opened.opened.room});
                hub::Command failed = hub::RoomOpened{std::move(opened.opened.room), {}};
                co_await to_hub(std::move(failed));
            }
            const bool was_up = std::exchange(up_, false);
            metrics_.redis_up = 0;
            if (detached_) {
                break;
            }
            if (was_up) {
                hub::Command down = hub::Reachability{false};
                co_await to_hub(std::move(down));
            }
        }
        // Jitter: nodes that lost Redis together do not all come back at
        // once; never above the last backoff (Timing says why).
        std::uniform_real_distribution<double> jitter(0.5, 1.5);
        const auto delay =
            std::chrono::duration_cast<std::chrono::milliseconds>(backoff * jitter(random_));
        backoff_timer_.expires_after(std::min(delay, timing_.last_backoff));
        co_await backoff_timer_.async_wait(use_nothrow);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, timing_.last_backoff);
    }
}

awaitable<bool> RedisCluster::serve(bool first) {
    const bool joined = co_await join_room(first);
    if (joined) {
        co_await read_events();
    }
    co_return joined;
}

awaitable<bool> RedisCluster::connect() {
    error_code ec;
    for (auto* connection : {commands_.get(), events_.get(), leases_.get()}) {
        ec = co_await connection->connect(config_.redis, timing_.call_limit);
        if (ec) {
            break;
        }
    }
    if (!ec) {
        // The scripts, once per connect: a restarted Redis has none.
        shas_.clear();
        for (std::size_t script = 0; script < script_count; ++script) {
            const std::vector<std::string> load{"SCRIPT", "LOAD",
                                                script_text(static_cast<Script>(script))};
            auto [load_error, reply] = co_await commands_->call(load, timing_.call_limit);
            if (load_error || is_error(*reply)) {
                ec = load_error ? load_error : asio::error::invalid_argument;
                if (!load_error) {
                    CHAT_LOG(error) << "redis: a script was refused: " << text(*reply);
                }
                break;
            }
            shas_.emplace_back(text(*reply));
        }
    }
    if (!ec) {
        // The reader's id: a room more to read ends its XREAD early.
        // Its arguments in a local, not a braced temporary inside co_await
        // (docs/architecture.md, trap 1).
        const std::vector<std::string> client_id{"CLIENT", "ID"};
        auto [id_error, id] = co_await events_->call(client_id, timing_.call_limit);
        ec = id_error ? id_error : is_error(*id) ? asio::error::invalid_argument : error_code{};
        if (!ec) {
            reader_id_ = std::to_string(id->integer);
        }
    }
    if (ec) {
        lost("cannot connect", ec);
        co_return false;
    }
    // The lease before any login: a node without one is taken for dead, and
    // its users' names for free. No sweep yet: the other nodes may still be
    // on their way back from the same outage.
    connected_at_ = std::chrono::steady_clock::now();
    sweeping_ = false;
    co_return co_await renew_lease(false);
}

awaitable<bool> RedisCluster::join_room(bool first) {
    std::optional<hub::RoomState> state;
    if (!first && !resync_) {
        // Is the room still the one this node left? The probe also notices a
        // Redis that came back with older state than this node saw, and
        // gives the room a new epoch then.
        const auto ask = probe_call();
        auto [ec, reply] = co_await commands_->call(ask, timing_.call_limit);
        if (ec || is_error(*reply)) {
            lost("cannot read the epoch", ec ? ec : asio::error::invalid_argument);
            co_return false;
        }
        resync_ = text(*reply) == "epoch";
    }
    if (first || resync_) {
        state = co_await sync();
        if (!state) {
            co_return false;
        }
    }
    up_ = true;
    said_down_ = false;
    // Leaves (and rooms let go of) that could not be sent while Redis was
    // away: the users are gone.
    for (auto& owed : std::exchange(owed_, {})) {
        send_owed(std::move(owed));
    }
    metrics_.redis_up = 1;
    if (first) {
        CHAT_LOG(info) << "cluster: node " << config_.node_id << " joined the room at redis "
                       << config_.redis.describe() << " (epoch " << epoch_ << ", "
                       << state->users.size() << " users online)";
    } else {
        CHAT_LOG(warning) << "cluster: redis " << config_.redis.describe() << " is back; "
                          << (resync_ ? "this node cannot catch up (a new epoch, or events "
                                        "missed): clients log in again (1012)"
                                      : "catching up from the last event applied");
    }
    const bool reset = !first && resync_;
    resync_ = false;
    hub::Command up = hub::Reachability{true, std::move(state), reset};
    co_await to_hub(std::move(up));
    co_return true;
}

awaitable<std::optional<hub::RoomState>> RedisCluster::sync(bool new_epoch) {
    // The script lets go of this node's rooms and users: whatever it read
    // of its rooms is over, and rooms still being opened are refused.
    ++generation_;
    std::erase_if(reading_, [](const auto& room) { return !room.first.empty(); });
    const auto call = script_call(
        Script::sync, script_args({hub::new_epoch(), std::to_string(config_.newest),
                                   new_epoch ? "1" : "0", std::to_string(config_.keep)}));
    auto [ec, reply] = co_await commands_->call(call, timing_.call_limit);
    const auto room = ec ? std::nullopt : decode_room_state(*reply, true);
    if (!room) {
        lost("cannot read the room's state", ec ? ec : asio::error::invalid_argument);
        co_return std::nullopt;
    }
    hub::RoomState state;
    state.epoch = room->epoch;
    auto& lobby = reading_.at("");
    lobby.last_entry = room->last_entry;
    lobby.last_seq = room->last_seq;
    state.last_id = room->last_id;
    state.stamp = room->stamp;
    state.users = users_of(*room, config_.node_id, incarnation_);
    state.newest = newest_of(*room);
    epoch_ = state.epoch;
    last_id_ = state.last_id;
    last_global_ = room->global;
    co_return state;
}

awaitable<bool> RedisCluster::start_afresh(const char* why, bool new_epoch) {
    CHAT_LOG(warning) << "cluster: " << why << "; clients log in again (1012)";
    resync_ = true;
    // A Redis that lost the room lost the lease too: renewed before the
    // clients come back to log in.
    if (!co_await renew_lease(false)) {
        co_return false;
    }
    auto state = co_await sync(new_epoch);
    if (!state) {
        co_return false;
    }
    resync_ = false;
    hub::Command restart = hub::Reachability{true, std::move(state), true};
    co_return co_await to_hub(std::move(restart));
}

awaitable<void> RedisCluster::read_events() {
    const auto block = std::to_string(read_block.count());
    for (;;) {
        // Rooms opened go to the hub before any of their events.
        if (!co_await hand_over_opened()) {
            co_return;
        }
        std::vector<std::string> xread{"XREAD", "COUNT", read_count, "BLOCK", block, "STREAMS"};
        xread.reserve(xread.size() + 2 * reading_.size());
        for (const auto& [room, at] : reading_) {
            xread.push_back(at.stream);
        }
        for (const auto& [room, at] : reading_) {
            xread.push_back(at.last_entry);
        }
        xread_version_ = reading_version_;
        xread_in_flight_ = true;
        auto [ec, reply] = co_await events_->call(xread, read_block + timing_.call_limit);
        xread_in_flight_ = false;
        metrics_.add(metrics_.redis_calls);
        if (ec || is_error(*reply)) {
            lost("reading events failed", ec ? ec : asio::error::invalid_argument);
            co_return;
        }
        if (is_nil(*reply) && xread_version_ != reading_version_) {
            continue;  // ended early: a room more to read
        }
        if (is_nil(*reply)) {
            // Nothing happened for a while: the sequencer's time, so that this
            // node's own frames keep a fresh stamp below every event to come.
            // The probe also notices a room that is no longer this node's
            // (flushed, or rolled back to older state).
            auto [probe_error, stamp] = co_await events_->call(probe_call(), timing_.call_limit);
            if (probe_error || is_error(*stamp)) {
                lost("reading events failed",
                     probe_error ? probe_error : asio::error::invalid_argument);
                co_return;
            }
            if (text(*stamp) == "epoch") {
                if (!co_await start_afresh("redis lost the room's state (a new epoch)", false)) {
                    co_return;
                }
            } else if (!is_nil(*stamp)) {
                hub::Command tick =
                    hub::Sequenced{{}, static_cast<std::int64_t>(to_number(text(*stamp)))};
                co_await to_hub(std::move(tick));
            }
            continue;
        }
        hub::Sequenced batch;
        bool gap = false;
        bool went_back = false;
        for (const auto& [stream, entries] : stream_entries(*reply)) {
            const auto room = room_of_stream(stream);
            const auto at = room ? reading_.find(*room) : reading_.end();
            if (at == reading_.end() || at->second.since > xread_version_) {
                continue;  // let go of meanwhile, or read from a new start since
            }
            auto& reading = at->second;
            for (const auto* entry : entries) {
                const auto decoded = decode_event(*entry);
                if (decoded && decoded->seq <= reading.last_seq) {
                    // Numbers this node has applied already, for other events:
                    // Redis came back with older state, and other nodes went
                    // on from it. Ids may repeat: a new epoch.
                    went_back = true;
                    break;
                }
                if (!decoded || decoded->seq != reading.last_seq + 1) {
                    gap = true;  // trimmed while this node was away
                    break;
                }
                reading.last_seq = decoded->seq;
                reading.last_entry = decoded->entry;
                if (room->empty()) {
                    last_id_ = std::max(last_id_, decoded->id);
                }
                last_global_ = std::max(last_global_, decoded->global);
                hub::Event event{decoded->kind,
                                 std::string(decoded->name),
                                 std::string(decoded->text),
                                 decoded->id,
                                 decoded->stamp,
                                 local_peer(decoded->owner.node, decoded->owner.incarnation,
                                            decoded->owner.connection),
                                 *room};
                batch.now = std::max(batch.now, event.stamp);
                batch.events.push_back(std::move(event));
            }
            if (gap || went_back) {
                break;
            }
        }
        metrics_.add(metrics_.events_sequenced, batch.events.size());
        if (!batch.events.empty()) {
            hub::Command sequenced = std::move(batch);
            if (!co_await to_hub(std::move(sequenced))) {
                co_return;
            }
        }
        if (went_back && !co_await start_afresh("redis went back to older state", true)) {
            co_return;
        }
        if (gap && !co_await start_afresh("events this node missed are no longer kept")) {
            co_return;
        }
    }
}

awaitable<bool> RedisCluster::hand_over_opened() {
    for (auto& opened : std::exchange(opened_, {})) {
        if (opened.generation != generation_) {
            opened.opened.start = {};  // failed: the node started afresh since
        }
        hub::Command command = std::move(opened.opened);
        if (!co_await to_hub(std::move(command))) {
            co_return false;
        }
    }
    co_return true;
}

std::vector<std::string> RedisCluster::probe_call() const {
    auto args = script_args();
    for (const auto& [room, at] : reading_) {
        args.push_back(room);
        args.push_back(std::to_string(at.last_seq));
    }
    return script_call(probe, std::move(args));
}

void RedisCluster::unblock_reader() {
    if (!xread_in_flight_ || xread_version_ == reading_version_ || unblocking_ ||
        reader_id_.empty() || !commands_->is_open()) {
        return;
    }
    unblocking_ = true;
    metrics_.add(metrics_.redis_calls);
    commands_->send({"CLIENT", "UNBLOCK", reader_id_}, timing_.call_limit,
                    [this](error_code ec, const cluster::Reply& reply) {
                        unblocking_ = false;
                        if (ec || is_error(*reply) || reply->integer != 0) {
                            return;  // ended, or the connections are going
                        }
                        // The XREAD had not blocked yet (or had just ended):
                        // again shortly, while it is still the older one.
                        unblock_timer_.expires_after(1ms);
                        unblock_timer_.async_wait([this](error_code wait_error) {
                            if (!wait_error) {
                                unblock_reader();
                            }
                        });
                    });
}

awaitable<void> RedisCluster::keep_lease() {
    while (leases_->is_open()) {
        lease_timer_.expires_after(timing_.renew);
        co_await lease_timer_.async_wait(use_nothrow);
        if (!leases_->is_open()) {
            // Closed by lost() (nothing more to do), or by itself: a call
            // over its limit, an end of stream. Then all of them go, and
            // run() connects again.
            lost("the lease's connection closed", leases_->last_error());
            co_return;
        }
        if (!commands_->is_open()) {
            // The same for the calls' connection, idle in a quiet room (cut
            // by Redis's timeout or a firewall): found now, not by the next
            // user's request, which would be refused.
            lost("the calls' connection closed", commands_->last_error());
            co_return;
        }
        // Judge the others only after a node timeout connected: had Redis
        // been away, every live node has renewed by then.
        const bool sweep = std::chrono::steady_clock::now() - connected_at_ >= timing_.sweep_after;
        if (sweep && !std::exchange(sweeping_, true)) {
            CHAT_LOG(info) << "cluster: connected for a node timeout; a node whose lease "
                              "lapses from now on is taken for dead";
        }
        if (!co_await renew_lease(sweep)) {
            co_return;
        }
    }
}

awaitable<bool> RedisCluster::renew_lease(bool sweep) {
    const auto renew =
        script_call(lease, script_args({std::to_string(timing_.lease.count()), sweep ? "1" : "0"}));
    auto [ec, reply] = co_await leases_->call(renew, timing_.call_limit);
    metrics_.add(metrics_.redis_calls);
    const auto parts = ec || is_error(*reply) ? std::span<redisReply* const>{} : elements(*reply);
    if (parts.size() != 2) {
        lost("renewing the lease failed", ec ? ec : asio::error::invalid_argument);
        co_return false;
    }
    if (const auto removed = parts[0]->integer; removed > 0) {
        metrics_.add(metrics_.users_swept, static_cast<std::uint64_t>(removed));
        CHAT_LOG(info) << "cluster: announced the leaves of " << removed
                       << " users of nodes that stopped answering";
    }
    const auto before = text(*parts[1]);
    if (!before.empty() && before != incarnation_) {
        if (!sweep && !up_ && epoch_.empty()) {
            // The first lease of this process: the id's earlier process did
            // not say goodbye. Its users leave before this one takes a login.
            CHAT_LOG(warning) << "cluster: node " << config_.node_id
                              << " took over from an earlier process that did not stop "
                                 "cleanly; its users are announced gone";
        } else {
            CHAT_LOG(error) << "cluster: another process renewed the lease of node "
                            << config_.node_id << " (incarnation " << before
                            << "): a node id must name one process at a time";
        }
    }
    co_return true;
}

std::vector<std::string> RedisCluster::script_args(std::initializer_list<std::string> more) const {
    std::vector<std::string> args{config_.key_prefix,
                                  epoch_,
                                  std::to_string(reading_.at("").last_seq),
                                  std::to_string(last_id_),
                                  std::to_string(config_.events_kept),
                                  config_.node_id,
                                  incarnation_,
                                  std::to_string(last_global_)};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

std::string RedisCluster::room_key(const std::string& room, std::string_view key) const {
    if (room.empty()) {
        return config_.key_prefix + std::string(key);
    }
    return config_.key_prefix + "{r:" + room + "}:" + std::string(key);
}

std::optional<std::string> RedisCluster::room_of_stream(std::string_view stream) const {
    const std::string_view prefix = config_.key_prefix;
    if (!stream.starts_with(prefix)) {
        return std::nullopt;
    }
    stream.remove_prefix(prefix.size());
    if (stream == "events") {
        return std::string();
    }
    constexpr std::string_view open = "{r:";
    constexpr std::string_view close = "}:events";
    if (!stream.starts_with(open) || !stream.ends_with(close) ||
        stream.size() <= open.size() + close.size()) {
        return std::nullopt;
    }
    return std::string(stream.substr(open.size(), stream.size() - open.size() - close.size()));
}

awaitable<bool> RedisCluster::to_hub(hub::Command command) {
    if (hub_ == nullptr || detached_) {
        co_return false;
    }
    co_return co_await hub_->send(std::move(command));
}

void RedisCluster::tell_hub(hub::Command command) {
    asio::co_spawn(strand_, to_hub(std::move(command)), asio::detached);
}

void RedisCluster::refuse(hub::PeerId peer, hub::Refused::Request request, std::string reason,
                          std::string room) {
    tell_hub(hub::Refused{peer, request, std::move(reason), std::move(room)});
}

std::vector<std::string> RedisCluster::script_call(std::size_t script,
                                                   std::vector<std::string> args) const {
    std::vector<std::string> call{"EVALSHA", shas_.size() > script ? shas_[script] : "", "0"};
    std::move(args.begin(), args.end(), std::back_inserter(call));
    return call;
}

void RedisCluster::send_script(std::size_t script, std::vector<std::string> args,
                               std::function<void(error_code, const redisReply*)> done) {
    metrics_.add(metrics_.redis_calls);
    commands_->send(script_call(script, std::move(args)), timing_.call_limit,
                    [this, done = std::move(done)](error_code ec, const cluster::Reply& reply) {
                        if (!ec && is_error(*reply)) {
                            CHAT_LOG(error) << "redis: a script failed: " << text(*reply);
                            ec = asio::error::invalid_argument;
                        } else if (ec) {
                            // The connection closed under the call (its
                            // limit, an end of stream): the others must
                            // reconnect too, or the node would look up with
                            // every request refused.
                            lost("a call failed", ec);
                        }
                        done(ec, ec ? nullptr : reply.get());
                    });
}

hub::Sequencer::Placed RedisCluster::join(hub::PeerId peer, const std::string& room,
                                          const std::string& name, const std::string& joined) {
    asio::post(strand_, [this, peer, room, name, joined] {
        const auto request =
            room.empty() ? hub::Refused::Request::login : hub::Refused::Request::join;
        const char* const unavailable = room.empty() ? unavailable_login : unavailable_join;
        if (!up_) {
            refuse(peer, request, unavailable, room);
            return;
        }
        send_script(
            Script::join, script_args({std::to_string(peer), name, joined, room}),
            [this, peer, name, request, unavailable, room](error_code ec, const redisReply* reply) {
                const auto outcome = ec ? std::string_view{} : text(*reply);
                if (outcome == "ok") {
                    return;  // the join comes back with the events
                }
                if (ec && !room.empty()) {
                    // It may have been carried out, its answer lost (and
                    // its event not read: the room is let go of once the
                    // join is refused). The leave is owed.
                    send_owed(Owed{peer, name, room});
                }
                if (outcome == "taken") {
                    refuse(peer, request, "name taken", room);
                    return;
                }
                // "gone": the others announced this user gone (its
                // leave is on its way); "closed": the room was let go
                // of meanwhile. Either way the client may try again.
                refuse(peer, request, unavailable, room);
                if (!ec) {
                    room_moved(outcome);
                }
            });
    });
    return std::nullopt;  // the join comes back with the events
}

hub::Sequencer::Placed RedisCluster::say(hub::PeerId peer, const std::string& room,
                                         const std::string& name, std::string content) {
    // The content is moved, not copied, all the way to the command's encoding.
    asio::post(strand_, [this, peer, room, name, content = std::move(content)]() mutable {
        constexpr auto request = hub::Refused::Request::message;
        if (!up_) {
            refuse(peer, request, unavailable_message, room);
            return;
        }
        const auto bytes = content.size();
        if (messages_in_flight_ >= config_.messages_in_flight ||
            bytes_in_flight_ + bytes > config_.bytes_in_flight) {
            metrics_.add(metrics_.redis_calls_refused);
            refuse(peer, request, busy_message, room);
            return;
        }
        ++messages_in_flight_;
        bytes_in_flight_ += bytes;
        auto args = script_args({std::to_string(peer), name});
        args.push_back(std::move(content));
        args.push_back(std::to_string(config_.keep));
        args.push_back(room);
        send_script(Script::message, std::move(args),
                    [this, peer, bytes, room](error_code ec, const redisReply* reply) {
                        --messages_in_flight_;
                        bytes_in_flight_ -= bytes;
                        const auto outcome = ec ? std::string_view{} : text(*reply);
                        if (outcome == "ok") {
                            return;
                        }
                        refuse(peer, request, unavailable_message, room);
                        if (!ec) {
                            room_moved(outcome);
                        }
                    });
    });
    return std::nullopt;  // the message comes back with the events
}

hub::Sequencer::Placed RedisCluster::leave(hub::PeerId peer, const std::string& room,
                                           const std::string& name) {
    asio::post(strand_,
               [this, owed = Owed{peer, name, room}]() mutable { send_owed(std::move(owed)); });
    return std::nullopt;
}

void RedisCluster::send_owed(Owed owed) {
    if (!up_) {
        owed_.push_back(std::move(owed));
        return;
    }
    // The arguments first, in a statement of their own: the callback below
    // takes `owed`, and the order in which a call's arguments are evaluated
    // is the compiler's (g++ moved it away before the name was read).
    const auto script = owed.peer != 0 ? Script::leave : Script::vacate;
    auto args = owed.peer != 0 ? script_args({std::to_string(owed.peer), owed.name, owed.room})
                               : script_args({owed.room});
    send_script(script, std::move(args),
                [this, owed = std::move(owed)](error_code ec, const redisReply*) mutable {
                    if (ec && !detached_) {
                        owed_.push_back(std::move(owed));  // sent again when Redis is back
                    }
                });
}

bool RedisCluster::count_rooms(hub::PeerId peer) {
    asio::post(strand_, [this, peer] {
        if (!up_ || reads_in_flight_ >= config_.reads_in_flight) {
            tell_hub(hub::RoomsCounted{peer, std::nullopt});
            return;
        }
        ++reads_in_flight_;
        metrics_.add(metrics_.redis_calls);
        // The busiest 1,000 (rule 17), of every node (rule 18).
        commands_->send({"ZREVRANGE", room_key({}, "busy"), "0", "999", "WITHSCORES"},
                        timing_.call_limit,
                        [this, peer](error_code ec, const cluster::Reply& reply) {
                            --reads_in_flight_;
                            if (ec) {
                                lost("counting the rooms failed", ec);
                            }
                            hub::RoomsCounted counted{peer, std::nullopt};
                            if (!ec && !is_error(*reply)) {
                                const auto found = elements(*reply);
                                counted.rooms.emplace();
                                for (std::size_t i = 0; i + 1 < found.size(); i += 2) {
                                    counted.rooms->emplace_back(std::string(text(*found[i])),
                                                                to_number(text(*found[i + 1])));
                                }
                            }
                            tell_hub(std::move(counted));
                        });
    });
    return true;
}

void RedisCluster::open_room(const std::string& room, std::size_t newest) {
    asio::post(strand_, [this, room, newest] {
        if (!up_) {
            tell_hub(hub::RoomOpened{room, {}});
            return;
        }
        const auto generation = generation_;
        send_script(Script::open,
                    script_args({room, std::to_string(newest), std::to_string(config_.max_rooms),
                                 std::to_string(config_.keep)}),
                    [this, room, generation](error_code ec, const redisReply* reply) {
                        hub::RoomOpened opened{room, {}};
                        const auto outcome = ec ? std::string_view{} : text(*reply);
                        if (outcome == "too_many") {
                            opened.start.outcome = hub::RoomStart::Outcome::too_many;
                        } else if (!ec && outcome.empty() && generation == generation_) {
                            if (auto started = start_reading(room, *reply)) {
                                // Handed over by the reader, ahead of the room's events.
                                opened_.push_back({generation, std::move(*started)});
                                unblock_reader();
                                return;
                            }
                            CHAT_LOG(error) << "redis: a room's state could not be read";
                            send_owed(Owed{0, {}, room});  // held in Redis all the same
                        } else if (ec) {
                            send_owed(Owed{0, {}, room});  // it may hold it, the answer lost
                        } else {
                            room_moved(outcome);
                        }
                        tell_hub(std::move(opened));
                    });
    });
}

std::optional<hub::RoomOpened> RedisCluster::start_reading(const std::string& room,
                                                           const redisReply& reply) {
    const auto state = decode_room_state(reply, false);
    if (!state) {
        return std::nullopt;
    }
    reading_.insert_or_assign(
        room, Reading{room_key(room, "events"), std::string(state->last_entry), state->last_seq,
                      ++reading_version_});
    last_global_ = std::max(last_global_, state->global);
    hub::RoomOpened opened{room, {}};
    auto& start = opened.start;
    start.outcome = hub::RoomStart::Outcome::opened;
    start.last_id = state->last_id;
    start.newest = newest_of(*state);
    start.users = users_of(*state, config_.node_id, incarnation_);
    start.stamp = state->stamp;
    return opened;
}

void RedisCluster::vacate(const std::string& room) {
    asio::post(strand_, [this, room] {
        reading_.erase(room);  // the XREAD in flight may still read it: skipped
        send_owed(Owed{0, {}, room});
    });
}

void RedisCluster::room_moved(std::string_view outcome) {
    // "epoch": Redis holds another room now; "lease": the others take this
    // node for dead. Either way, reconnect and find out where the room is.
    if (outcome == "epoch" || outcome == "lease") {
        lost(outcome == "epoch" ? "the room's epoch changed" : "this node's lease lapsed",
             asio::error::connection_reset);
    }
}

void RedisCluster::lost(const char* what, error_code ec) {
    if (!said_down_ && !detached_) {
        said_down_ = true;
        metrics_.add(metrics_.redis_connection_losses);
        CHAT_LOG(warning) << "cluster: redis " << config_.redis.describe() << ": " << what << " ("
                          << ec.message() << "); reconnecting";
    }
    commands_->close(ec);
    events_->close(ec);
    leases_->close(ec);
    lease_timer_.cancel();
}

hub::PeerId RedisCluster::local_peer(std::string_view node, std::string_view incarnation,
                                     std::string_view peer) const {
    return peer_on(config_.node_id, incarnation_, node, incarnation, peer);
}

awaitable<void> RedisCluster::detach() {
    co_await asio::co_spawn(strand_, say_goodbye(), asio::use_awaitable);
}

awaitable<void> RedisCluster::say_goodbye() {
    detached_ = true;
    if (up_) {
        // Rule 11: the others announce this node's users' leaves now, not
        // after --node-timeout.
        const auto bye = script_call(goodbye, script_args());
        auto [ec, reply] = co_await commands_->call(bye, timing_.call_limit);
        if (ec || is_error(*reply)) {
            CHAT_LOG(warning) << "cluster: could not announce this node's leaves; the others "
                                 "will after the node timeout";
        } else {
            CHAT_LOG(info) << "cluster: node " << config_.node_id << " left the room";
        }
    }
    hub_ = nullptr;
    commands_->close();
    events_->close();
    leases_->close();
    lease_timer_.cancel();
    backoff_timer_.cancel();
}

void RedisHistory::open_room(const std::string& room, std::size_t newest, RoomReply /*reply*/) {
    cluster_.open_room(room, newest);
}

void RedisHistory::vacate(const std::string& room) {
    cluster_.vacate(room);
}

void RedisHistory::read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                               Reply reply) {
    cluster_.read_page(room, before, limit, std::move(reply));
}

void RedisCluster::read_page(const std::string& room, std::uint64_t before, std::size_t limit,
                             hub::History::Reply reply) {
    asio::post(strand_, [this, room, before, limit, reply = std::move(reply)]() mutable {
        if (!up_ || before == 0 || reads_in_flight_ >= config_.reads_in_flight) {
            reply(std::nullopt);
            return;
        }
        ++reads_in_flight_;
        // UINT64_MAX: the newest (a ring read again after the cache let go).
        auto upto = before == UINT64_MAX ? std::string("+") : std::to_string(before - 1) + "-1";
        // A script rather than XREVRANGE: Redis may hold more than the room
        // keeps (trimmed by whole stream nodes), and the page ends at the
        // kept ones, counted from the room's last id in Redis.
        send_script(Script::page,
                    script_args({room, std::move(upto), std::to_string(limit),
                                 std::to_string(config_.keep)}),
                    [this, reply = std::move(reply)](error_code ec, const redisReply* found) {
                        --reads_in_flight_;
                        if (ec) {
                            reply(std::nullopt);  // send_script() said why
                            return;
                        }
                        std::vector<hub::Frame> messages;
                        for (const auto* entry : elements(*found)) {
                            if (const auto kept = decode_message(*entry)) {
                                messages.push_back(message_frame(*kept));
                            }
                        }
                        std::reverse(messages.begin(), messages.end());  // oldest first
                        reply(std::move(messages));
                    });
    });
}

}  // namespace chat::cluster
