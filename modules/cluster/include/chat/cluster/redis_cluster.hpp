#pragma once
// Cluster mode (contract rule 15): nodes that share one Redis are one room.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "chat/cluster/redis_address.hpp"
#include "chat/hub/cluster.hpp"
#include "chat/hub/history.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/net/asio.hpp"

#include <boost/asio/steady_timer.hpp>

namespace chat::cluster {

class RedisConnection;

struct Config {
    RedisAddress redis;
    std::string node_id;  // unique among the nodes; names them in logs and metrics
    /// A node silent for this long is taken for dead: the others announce
    /// its users' leaves.
    std::chrono::milliseconds node_timeout{10'000};
    std::size_t keep = 100'000;                   // messages kept (rule 12)
    std::size_t newest = 1'000;                   // messages a node holds for joins and resumes
    std::size_t events_kept = 100'000;            // events a node cut off can catch up on
    std::chrono::milliseconds call_limit{3'000};  // a Redis call that takes longer fails
    std::string key_prefix = "chat:";
};

/// Redis as the room's sequencer, history and user registry. Every node
/// reads the one stream of events in order (XREAD on a connection of its own)
/// and hands them to its hub; requests go out pipelined on a second
/// connection, each an atomic Lua script. Lost connections are retried with
/// backoff and jitter; the hub hears once that Redis is gone and once that it
/// is back, and whether the node caught up or must restart its clients.
/// Everything runs on one strand of the executor given.
class RedisCluster final : public hub::Cluster, public hub::History {
  public:
    RedisCluster(const asio::any_io_executor& executor, Config config, metrics::Metrics& metrics);
    ~RedisCluster() override;

    // hub::Cluster
    void attach(hub::Hub& hub) override;
    void claim(hub::PeerId peer, const std::string& name, const std::string& joined) override;
    void publish(hub::PeerId peer, const std::string& name, std::string content) override;
    void leave(hub::PeerId peer, const std::string& name) override;
    awaitable<void> detach() override;

    // hub::History: the messages are in Redis; the hub learns the newest from
    // the room's state when the node joins it.
    Start start(std::size_t newest) override;
    bool try_append(std::uint64_t id, const hub::Frame& message) override;
    void read_before(std::uint64_t before, std::size_t limit, Reply reply) override;
    /// Nothing to record: Redis keeps a message in the script that numbers it.
    void stopped(std::uint64_t /*last_broadcast_id*/) override {}

  private:
    struct Leave {
        hub::PeerId peer;
        std::string name;
    };
    awaitable<void> run();
    awaitable<bool> connect();
    /// Joins the room where it is (first time, or it cannot catch up) or
    /// catches up from the last event applied. False when Redis failed.
    awaitable<bool> join_room(bool first);
    awaitable<std::optional<hub::RoomState>> sync();
    awaitable<void> read_events();
    awaitable<void> keep_lease();
    awaitable<void> say_goodbye();
    /// False once the hub takes no more commands.
    awaitable<bool> to_hub(hub::Command command);
    void refuse(hub::PeerId peer, bool login, std::string reason);
    /// Runs a script on the command connection; `done` gets its answer ("ok",
    /// "taken", ...) or an error.
    void send_script(std::size_t script, std::vector<std::string> args,
                     std::function<void(error_code, std::string_view)> done);
    void send_leave(Leave leave);
    /// A script found the room elsewhere ("epoch", "lease"): reconnect.
    void room_moved(std::string_view outcome);
    /// Closes both connections (the loops end and run() reconnects); logs
    /// the first loss of an outage only.
    void lost(const char* what, error_code ec);
    std::vector<std::string> script_call(std::size_t script, std::vector<std::string> args) const;
    std::vector<std::string> lease_call() const;
    hub::PeerId local_peer(std::string_view node, std::string_view peer) const;

    asio::any_io_executor strand_;
    const Config config_;
    metrics::Metrics& metrics_;
    std::unique_ptr<RedisConnection> commands_;  // requests, pipelined
    std::unique_ptr<RedisConnection> events_;    // XREAD of the event stream
    asio::steady_timer lease_timer_;
    asio::steady_timer backoff_timer_;
    std::mt19937 random_;  // reconnection jitter
    hub::Hub* hub_ = nullptr;
    std::vector<std::string> shas_;   // of the scripts, loaded on each connect
    std::string epoch_;               // of the room the hub has
    std::string last_entry_ = "0-0";  // the last event read
    std::uint64_t last_seq_ = 0;      // its number
    bool up_ = false;                 // both connections work and the hub knows the room
    bool resync_ = false;             // the node missed events: it must join afresh
    bool detached_ = false;
    bool said_down_ = false;            // "unreachable" logged for this outage
    std::vector<Leave> unsent_leaves_;  // owed to Redis while it is down
};

}  // namespace chat::cluster
