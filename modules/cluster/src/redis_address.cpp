#include "chat/cluster/redis_address.hpp"

#include <algorithm>
#include <charconv>

#include "chat/net/percent_decode.hpp"

namespace chat::cluster {

namespace {

bool all_digits(std::string_view text) {
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// A URL's user and password are percent-encoded ("%40" for '@'), so that
/// they may hold '@', ':' or '/'.
std::string percent_decoded(std::string_view text, const char* what) {
    auto decoded = net::percent_decode(text);
    if (!decoded) {
        throw std::invalid_argument(std::string("has a bad percent escape in its ") + what +
                                    " (write % as %25)");
    }
    return std::move(*decoded);
}

}  // namespace

std::string RedisAddress::describe() const {
    return host + ":" + port + (database != 0 ? "/" + std::to_string(database) : "");
}

RedisAddress parse_redis_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) {
        throw std::invalid_argument("must start with redis:// (redis://HOST:PORT)");
    }
    url.remove_prefix(scheme.size());
    RedisAddress address;
    if (const auto at = url.rfind('@'); at != std::string_view::npos) {
        const auto credentials = url.substr(0, at);
        url.remove_prefix(at + 1);
        if (const auto colon = credentials.find(':'); colon != std::string_view::npos) {
            address.user = percent_decoded(credentials.substr(0, colon), "user");
            address.password = percent_decoded(credentials.substr(colon + 1), "password");
        } else {
            address.password = percent_decoded(credentials, "password");  // redis://PASSWORD@HOST
        }
        if (address.password.empty()) {
            throw std::invalid_argument("has an empty password");
        }
    }
    if (const auto slash = url.find('/'); slash != std::string_view::npos) {
        const auto database = url.substr(slash + 1);
        url = url.substr(0, slash);
        if (!database.empty()) {
            int number = 0;
            const auto [end, ec] =
                std::from_chars(database.data(), database.data() + database.size(), number);
            if (!all_digits(database) || ec != std::errc{} ||
                end != database.data() + database.size()) {
                throw std::invalid_argument("database must be a number (redis://HOST:PORT/DB)");
            }
            address.database = number;
        }
    }
    if (url.starts_with('[')) {  // [IPv6]:PORT
        const auto close = url.find(']');
        if (close == std::string_view::npos) {
            throw std::invalid_argument("has an unclosed [ in its host");
        }
        address.host = url.substr(1, close - 1);
        url.remove_prefix(close + 1);
        if (!url.empty() && !url.starts_with(':')) {
            throw std::invalid_argument("has text after its [host]");
        }
    } else {
        const auto colon = url.find(':');
        address.host = url.substr(0, colon);
        url = colon == std::string_view::npos ? std::string_view{} : url.substr(colon);
    }
    if (url.starts_with(':')) {
        const auto port = url.substr(1);
        int number = 0;
        std::from_chars(port.data(), port.data() + port.size(), number);
        if (!all_digits(port) || number < 1 || number > 65535) {
            throw std::invalid_argument("port must be between 1 and 65535");
        }
        address.port = port;
    }
    if (address.host.empty()) {
        throw std::invalid_argument("has no host");
    }
    return address;
}

}  // namespace chat::cluster
