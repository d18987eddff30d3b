#pragma once
// Counters and gauges of the service, read by GET /metrics. Relaxed atomics:
// no lock on a hot path, and no reader needs them consistent with each other.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace chat::metrics {

/// Why the server ended a connection it did not want to keep.
enum class DropReason { slow_consumer, flooding, idle, protocol_error, stalled_writer, count };

std::string_view label(DropReason reason);

/// Why the server turned a connection away.
enum class RefuseReason { server_full, address_limit, count };

std::string_view label(RefuseReason reason);

class Metrics {
  public:
    using Counter = std::atomic<std::uint64_t>;
    using Gauge = std::atomic<std::int64_t>;

    Gauge connections_open{0};     // WebSocket connections
    Gauge users_online{0};         // logged in
    Gauge rooms_with_users{0};     // rooms besides the lobby that have users (rule 17)
    Gauge rooms_kept{0};           // rooms besides the lobby that exist: with users or messages
    Counter connections_total{0};  // WebSocket connections accepted
    Counter frames_received{0};
    Counter frames_sent{0};
    Counter messages_broadcast{0};
    Counter http_requests{0};
    Counter history_requests{0};          // rule 14 requests answered
    Counter messages_stored{0};           // written to the history's database
    Gauge store_queue_depth{0};           // messages waiting for the store thread
    Counter store_batches{0};             // transactions the store committed
    Counter store_batch_microseconds{0};  // time they took, in all
    // Cluster mode (rule 15); node_id is set once, before the server starts.
    std::string node_id;
    Gauge redis_up{0};            // the sequencer can be reached
    Counter events_sequenced{0};  // events read from the sequencer
    Counter redis_calls{0};       // commands sent to Redis
    Counter redis_connection_losses{0};
    Counter redis_calls_refused{0};  // messages refused: too many already in flight
    Counter users_swept{0};          // users of dead nodes whose leaves this node announced

    void add(Counter& counter, std::uint64_t n = 1) noexcept {
        counter.fetch_add(n, std::memory_order_relaxed);
    }
    void add(Gauge& gauge, std::int64_t n) noexcept {
        gauge.fetch_add(n, std::memory_order_relaxed);
    }
    void dropped(DropReason reason) noexcept { add(dropped_[static_cast<std::size_t>(reason)]); }
    std::uint64_t dropped_count(DropReason reason) const noexcept {
        return dropped_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
    }
    void refused(RefuseReason reason) noexcept { add(refused_[static_cast<std::size_t>(reason)]); }
    std::uint64_t refused_count(RefuseReason reason) const noexcept {
        return refused_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
    }

    /// Prometheus text exposition format, version 0.0.4.
    std::string render() const;

  private:
    std::array<Counter, static_cast<std::size_t>(DropReason::count)> dropped_{};
    std::array<Counter, static_cast<std::size_t>(RefuseReason::count)> refused_{};
};

}  // namespace chat::metrics
