#pragma once
// WebSocket close codes the contract uses (RFC 6455, section 7.4.1): part of
// the wire, like the schema.

#include <cstdint>

namespace chat::proto {

enum class CloseCode : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    unsupported_data = 1003,
    policy_violation = 1008,
    too_big = 1009,
    internal_error = 1011,
    service_restart = 1012,  // a cluster node lost the room's state (rule 15)
};

}  // namespace chat::proto
