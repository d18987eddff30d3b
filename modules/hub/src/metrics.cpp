#include "chat/hub/metrics.hpp"

namespace chat::hub {

std::string_view label(DropReason reason) {
    switch (reason) {
        case DropReason::slow_consumer:
            return "slow_consumer";
        case DropReason::flooding:
            return "flooding";
        case DropReason::idle:
            return "idle";
        case DropReason::protocol_error:
            return "protocol_error";
        case DropReason::count:
            break;
    }
    return "unknown";
}

namespace {
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
    out.append("# HELP chat_clients_dropped_total Connections the server ended, by reason.\n");
    out.append("# TYPE chat_clients_dropped_total counter\n");
    for (std::size_t i = 0; i < dropped_.size(); ++i) {
        out.append("chat_clients_dropped_total{reason=\"")
            .append(label(static_cast<DropReason>(i)))
            .append("\"} ")
            .append(std::to_string(dropped_[i].load(std::memory_order_relaxed)))
            .append("\n");
    }
    return out;
}

}  // namespace chat::hub
