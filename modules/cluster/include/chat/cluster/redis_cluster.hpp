#pragma once
// Cluster mode (contract rule 15): nodes that share one Redis are one room.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/cluster/redis_address.hpp"
#include "chat/hub/history.hpp"
#include "chat/hub/sequencer.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/net/asio.hpp"

#include <boost/asio/steady_timer.hpp>

struct redisReply;

namespace chat::cluster {

class RedisConnection;
class RedisCluster;

/// The rooms' kept messages as the hub sees them. Redis keeps each message
/// in the script that numbers it, so nothing is appended or recorded here.
/// The lobby's newest come with its state when the node joins the cluster
/// (Reachability); a room's when the node opens it, and then the node reads
/// its events until it vacates it. Older pages are read from Redis.
class RedisHistory final : public hub::History {
  public:
    explicit RedisHistory(RedisCluster& cluster) : cluster_(cluster) {}
    Start start(std::size_t /*newest*/) override { return {}; }
    /// The answer comes as a RoomOpened command sent by the cluster itself,
    /// ahead of the room's first events (`reply` is not called).
    void open_room(const std::string& room, std::size_t newest, RoomReply reply) override;
    void vacate(const std::string& room) override;
    bool try_append(const std::string& /*room*/, std::uint64_t /*id*/,
                    const hub::Frame& /*message*/) override {
        return true;
    }
    void read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                     Reply reply) override;
    void stopped(bool /*all_handed_over*/) override {}

  private:
    RedisCluster& cluster_;
};

struct Config {
    RedisAddress redis;
    std::string node_id;  // names one process at a time; in logs and metrics
    /// A node silent for this long is taken for dead: the others announce
    /// its users' leaves within it (Timing says how).
    std::chrono::milliseconds node_timeout{10'000};
    std::size_t keep = 100'000;         // messages kept (rule 12)
    std::size_t newest = 1'000;         // messages a node holds for joins and resumes
    std::size_t events_kept = 100'000;  // events a node cut off can catch up on
    /// Messages sent to Redis and not yet answered, at most, and their
    /// bytes: beyond either, a message is refused "unavailable" rather than
    /// queued. A live Redis answers thousands a millisecond; a backlog this
    /// deep means it is slow, and queueing more would only grow memory and
    /// the wait of every call behind it.
    std::size_t messages_in_flight = 4096;
    std::size_t bytes_in_flight = std::size_t{8} << 20;
    /// History pages asked of Redis and not yet answered, at most; beyond,
    /// a request is answered "unavailable: try again".
    std::size_t reads_in_flight = 64;
    std::size_t max_rooms = 100'000;  // besides the lobby, in the whole cluster
    std::string key_prefix = "chat:";
};

/// The clocks of liveness, all derived from the node timeout T so that a
/// dead node's users are announced within T (rule 15):
/// - a lease is renewed every T/6 and lives 2 periods plus a call limit, so
///   a live node's renewal always lands before its lease lapses;
/// - every node that has been connected for T sweeps at each renewal, so a
///   lease that lapsed is found within one period: at most
///   3·T/6 + T/4 = 3/4 T after the death, the rest is delivery;
/// - a call over the limit (T/4, at most 3 s) fails its connection: Redis
///   that slow is unreachable;
/// - reconnection attempts are at most T/4 apart (and 2 s), so that when
///   Redis comes back, every live node renews its lease well within the T
///   the others wait before they sweep (Redis being away is no death).
struct Timing {
    explicit Timing(std::chrono::milliseconds node_timeout);
    std::chrono::milliseconds renew;
    std::chrono::milliseconds call_limit;
    std::chrono::milliseconds lease;
    std::chrono::milliseconds sweep_after;  // connected this long before judging others
    std::chrono::milliseconds last_backoff;
};

/// Redis as the rooms' sequencer, history and user registry. Every node
/// reads the event streams of the lobby and of the rooms its users are in, each
/// in order (one XREAD over them on a connection of its own), and hands them
/// to its hub; requests go out pipelined on a second
/// connection, each an atomic Lua script, and the lease is renewed on a
/// third, so that it never waits behind messages. Lost connections are
/// retried with backoff and jitter; the hub hears once that Redis is gone and
/// once that it is back, and whether the node caught up or must restart its
/// clients. Everything runs on one strand of the executor given.
class RedisCluster final : public hub::Sequencer {
  public:
    RedisCluster(const asio::any_io_executor& executor, Config config, metrics::Metrics& metrics);
    ~RedisCluster() override;

    // hub::Sequencer: every event comes back through the stream.
    bool local() const noexcept override { return false; }
    void attach(hub::Hub& hub) override;
    Placed join(hub::PeerId peer, const std::string& room, const std::string& name,
                const std::string& joined) override;
    Placed say(hub::PeerId peer, const std::string& room, const std::string& name,
               std::string content) override;
    Placed leave(hub::PeerId peer, const std::string& room, const std::string& name) override;
    bool count_rooms(hub::PeerId peer) override;
    awaitable<void> detach() override;

    /// The rooms' kept messages, for the hub (RedisHistory).
    hub::History& history() noexcept { return *history_; }

    /// Rule 14 from Redis: calls `reply` with the newest kept messages of
    /// `room` whose ids are below `before`, at most `limit`, oldest first;
    /// nullopt when Redis cannot be reached or too many pages are being read.
    void read_page(const std::string& room, std::uint64_t before, std::size_t limit,
                   hub::History::Reply reply);
    /// The node holds `room` from now on: its state goes to the hub as a
    /// RoomOpened command, and its events follow.
    void open_room(const std::string& room, std::size_t newest);
    /// The node no longer holds `room`: its events are no longer read.
    void vacate(const std::string& room);

  private:
    /// What Redis is owed while it cannot be reached, sent in order when it
    /// is back: a user's leave of a room, or a room let go of.
    struct Owed {
        hub::PeerId peer = 0;  // 0: `room` is vacated
        std::string name;
        std::string room;
    };
    /// A room whose events this node reads, and where it stands in them.
    struct Reading {
        std::string stream;  // the events' key
        std::string last_entry = "0-0";
        std::uint64_t last_seq = 0;  // the last event's number in the room
        std::uint64_t since = 0;     // reading_version_ when it was added
    };
    /// A room opened, for the reader to hand to the hub before its events.
    struct Opened {
        std::uint64_t generation;
        hub::RoomOpened opened;
    };
    awaitable<void> run();
    awaitable<bool> connect();
    /// Joins the room where it is (first time, or it cannot catch up) or
    /// catches up from the last event applied. False when Redis failed.
    awaitable<bool> join_room(bool first);
    /// The room's state, after the leaves of any user still listed under
    /// this node's id: the node's clients start afresh.
    /// With `new_epoch`, the room takes a new epoch unless another node
    /// changed it already (Redis went back to older state).
    awaitable<std::optional<hub::RoomState>> sync(bool new_epoch = false);
    /// The node cannot catch up (events missed, another epoch): the hub
    /// restarts its clients in the room as it is now. False when Redis failed.
    awaitable<bool> start_afresh(const char* why, bool new_epoch = false);
    /// Joins the room, then reads its events until a connection fails.
    /// False when it could not join.
    awaitable<bool> serve(bool first);
    awaitable<void> read_events();
    awaitable<void> keep_lease();
    awaitable<void> say_goodbye();
    /// False once the hub takes no more commands.
    awaitable<bool> to_hub(hub::Command command);
    /// to_hub() when nothing waits for it (an answer, a refusal).
    void tell_hub(hub::Command command);
    /// The probe (scripts.hpp) over every room read.
    std::vector<std::string> probe_call() const;
    void refuse(hub::PeerId peer, hub::Refused::Request request, std::string reason,
                std::string room = {});
    /// Runs a script on the command connection; `done` gets its answer (the
    /// reply, whose text is "ok", "taken", ...) or an error.
    void send_script(std::size_t script, std::vector<std::string> args,
                     std::function<void(error_code, const redisReply*)> done);
    /// The arguments every script takes first (scripts.hpp), then `more`.
    std::vector<std::string> script_args(std::initializer_list<std::string> more = {}) const;
    void send_owed(Owed owed);
    /// The events' key of `room`, and the room of a key ("" is the lobby).
    std::string room_key(const std::string& room, std::string_view key) const;
    std::optional<std::string> room_of_stream(std::string_view stream) const;
    /// The reader reads a room more: its XREAD in flight is ended early.
    void unblock_reader();
    /// Hands the rooms opened to the hub, ahead of their events.
    awaitable<bool> hand_over_opened();
    /// Starts reading `room` from what the open script answered; the hub's
    /// RoomOpened. Nullopt when the answer is not shaped like one.
    std::optional<hub::RoomOpened> start_reading(const std::string& room, const redisReply& reply);
    /// A script found the room elsewhere ("epoch", "lease"): reconnect.
    void room_moved(std::string_view outcome);
    /// Closes every connection (the loops end and run() reconnects); logs
    /// the first loss of an outage only.
    void lost(const char* what, error_code ec);
    std::vector<std::string> script_call(std::size_t script, std::vector<std::string> args) const;
    /// Renews the lease (on its own connection); false when Redis failed.
    awaitable<bool> renew_lease(bool sweep);
    /// The connection `peer` of this process, or 0 for another node's (or
    /// an earlier process's under this node's id).
    hub::PeerId local_peer(std::string_view node, std::string_view incarnation,
                           std::string_view peer) const;

    asio::any_io_executor strand_;
    const Config config_;
    const Timing timing_;
    const std::string incarnation_;  // this process's, random
    metrics::Metrics& metrics_;
    std::unique_ptr<RedisConnection> commands_;  // requests, pipelined
    std::unique_ptr<RedisConnection> events_;    // XREAD of the event stream
    std::unique_ptr<RedisConnection> leases_;    // lease renewals, never behind a message
    asio::steady_timer lease_timer_;
    asio::steady_timer backoff_timer_;
    asio::steady_timer unblock_timer_;
    std::mt19937 random_;  // reconnection jitter
    hub::Hub* hub_ = nullptr;
    std::vector<std::string> shas_;           // of the scripts, loaded on each connect
    std::string epoch_;                       // of the rooms the hub has
    std::map<std::string, Reading> reading_;  // by room: the lobby's always
    std::uint64_t reading_version_ = 0;       // counts the rooms added to reading_
    std::uint64_t xread_version_ = 0;         // reading_version_ of the XREAD in flight
    bool xread_in_flight_ = false;
    bool unblocking_ = false;
    std::string reader_id_;  // the events connection's CLIENT ID, to unblock it
    std::vector<Opened> opened_;
    std::uint64_t generation_ = 0;   // bumped when the node starts afresh
    std::uint64_t last_id_ = 0;      // the highest lobby message id seen in this epoch
    std::uint64_t last_global_ = 0;  // the highest event number among all seen (gseq)
    std::chrono::steady_clock::time_point connected_at_;  // of the current connections
    bool sweeping_ = false;  // connected for a node timeout: judging the others' leases
    std::size_t messages_in_flight_ = 0;
    std::size_t bytes_in_flight_ = 0;
    std::size_t reads_in_flight_ = 0;  // pages and room counts
    bool up_ = false;                  // both connections work and the hub knows the room
    bool resync_ = false;              // the node missed events: it must join afresh
    bool detached_ = false;
    bool said_down_ = false;  // "unreachable" logged for this outage
    std::vector<Owed> owed_;  // to Redis while it is down
    std::unique_ptr<RedisHistory> history_ = std::make_unique<RedisHistory>(*this);
};

}  // namespace chat::cluster
