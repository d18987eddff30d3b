#include "chat/metrics/metrics.hpp"

namespace chat::metrics {

std::string_view label(DropReason reason) {
    switch (reason) {
        case DropReason::slow_consumer:
            return "slow_consumer";
        case DropReason::flooding:
            return "flooding";
        case DropReason::idle:
            return "idle";
        case DropReason::stalled_writer:
            return "stalled_writer";
        case DropReason::protocol_error:
            return "protocol_error";
        case DropReason::count:
            break;
    }
    return "unknown";
}

std::string_view label(RefuseReason reason) {
    switch (reason) {
        case RefuseReason::server_full:
            return "server_full";
        case RefuseReason::address_limit:
            return "address_limit";
        case RefuseReason::count:
            break;
    }
    return "unknown";
}

namespace {
template <typename Reason, std::size_t N>
void by_reason(std::string& out, std::string_view name, std::string_view help,
               const std::array<std::atomic<std::uint64_t>, N>& counters) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" counter\n");
    for (std::size_t i = 0; i < N; ++i) {
        out.append(name)
            .append("{reason=\"")
            .append(label(static_cast<Reason>(i)))
            .append("\"} ")
            .append(std::to_string(counters[i].load(std::memory_order_relaxed)))
            .append("\n");
    }
}

template <typename Number>
void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            const std::atomic<Number>& value) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    out.append(name)
        .append(" ")
        .append(std::to_string(value.load(std::memory_order_relaxed)))
        .append("\n");
}
}  // namespace

std::string Metrics::render() const {
    std::string out;
    out.reserve(2048);
    metric(out, "chat_connections_open", "gauge", "WebSocket connections open.", connections_open);
    metric(out, "chat_users_online", "gauge", "Users logged in.", users_online);
    metric(out, "chat_rooms_with_users", "gauge", "Rooms besides the lobby that have users.",
           rooms_with_users);
    metric(out, "chat_rooms_kept", "gauge",
           "Rooms besides the lobby that exist (with users or kept messages).", rooms_kept);
    metric(out, "chat_connections_total", "counter", "WebSocket connections accepted.",
           connections_total);
    metric(out, "chat_frames_received_total", "counter", "WebSocket frames received from clients.",
           frames_received);
    metric(out, "chat_frames_sent_total", "counter", "WebSocket frames written to clients.",
           frames_sent);
    metric(out, "chat_messages_broadcast_total", "counter", "Chat messages broadcast.",
           messages_broadcast);
    metric(out, "chat_http_requests_total", "counter", "Plain HTTP requests answered.",
           http_requests);
    metric(out, "chat_history_requests_total", "counter",
           "Requests for older messages answered (rule 14).", history_requests);
    metric(out, "chat_messages_stored_total", "counter", "Messages written to the history store.",
           messages_stored);
    metric(out, "chat_store_queue_depth", "gauge", "Messages waiting to be written to the store.",
           store_queue_depth);
    {
        // A summary without quantiles: rate(sum) / rate(count) is the mean.
        const auto batches = store_batches.load(std::memory_order_relaxed);
        const auto micros = store_batch_microseconds.load(std::memory_order_relaxed);
        out.append(
            "# HELP chat_store_batch_seconds Time to write one batch of messages (one "
            "transaction).\n# TYPE chat_store_batch_seconds summary\n");
        out.append("chat_store_batch_seconds_sum ")
            .append(std::to_string(static_cast<double>(micros) / 1e6))
            .append("\nchat_store_batch_seconds_count ")
            .append(std::to_string(batches))
            .append("\n");
    }
    if (!node_id.empty()) {
        // The label is the node's own name (--node-id), never a client's input.
        out.append("# HELP chat_node_info This cluster node.\n# TYPE chat_node_info gauge\n")
            .append("chat_node_info{node=\"")
            .append(node_id)
            .append("\"} 1\n");
        metric(out, "chat_redis_up", "gauge", "1 while the cluster's Redis can be reached.",
               redis_up);
        metric(out, "chat_events_sequenced_total", "counter",
               "Room events read back from Redis, in order.", events_sequenced);
        metric(out, "chat_redis_calls_total", "counter", "Commands sent to Redis.", redis_calls);
        metric(out, "chat_redis_connection_losses_total", "counter",
               "Times the connection to Redis was lost.", redis_connection_losses);
        metric(out, "chat_redis_calls_refused_total", "counter",
               "Messages refused because too many were already waiting for Redis.",
               redis_calls_refused);
        metric(out, "chat_users_swept_total", "counter",
               "Users of nodes that stopped answering whose leaves this node announced.",
               users_swept);
    }
    by_reason<DropReason>(out, "chat_clients_dropped_total",
                          "Connections the server ended, by reason.", dropped_);
    by_reason<RefuseReason>(out, "chat_connections_refused_total",
                            "Connections turned away by a connection limit, by reason.", refused_);
    return out;
}

}  // namespace chat::metrics
