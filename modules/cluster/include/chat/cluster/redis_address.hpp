#pragma once
// Where a node finds Redis: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB].

#include <stdexcept>
#include <string>
#include <string_view>

namespace chat::cluster {

struct RedisAddress {
    std::string host;
    std::string port = "6379";
    std::string user;      // with a password: Redis 6 ACL user; empty: AUTH password
    std::string password;  // empty: no AUTH
    int database = 0;      // SELECT when not 0

    /// "HOST:PORT/DB", without the credentials: for logs.
    std::string describe() const;
};

/// Throws std::invalid_argument saying what is wrong.
RedisAddress parse_redis_url(std::string_view url);

}  // namespace chat::cluster
