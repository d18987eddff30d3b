#include "chat/session/router.hpp"

#include <array>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "chat/proto/schema.hpp"

namespace chat::session {

namespace {
constexpr std::string_view server_name = "chat";
constexpr std::string_view chat_path = "/ws";
constexpr std::string_view plain_text = "text/plain; charset=utf-8";

template <typename Body>
void common_fields(http::response<Body>& response, const Request& request, bool keep_alive) {
    response.set(http::field::server, server_name);
    response.set("X-Content-Type-Options", "nosniff");
    response.keep_alive(keep_alive && request.keep_alive());
}

/// Every answer but a file's: for HEAD the same fields, Content-Length
/// included, and no body.
http::message_generator text(const Request& request, http::status status,
                             std::string_view content_type, std::string body, bool keep_alive) {
    http::response<http::string_body> response{status, request.version()};
    common_fields(response, request, keep_alive);
    response.set(http::field::content_type, content_type);
    if (status == http::status::method_not_allowed) {
        response.set(http::field::allow, "GET, HEAD");
    }
    if (status == http::status::service_unavailable) {
        response.set(http::field::retry_after, "5");  // full, or stopping: come back later
    }
    const auto length = body.size();
    if (request.method() != http::verb::head) {
        response.body() = std::move(body);
    }
    response.content_length(length);
    return response;
}

/// The limits the page reads from GET /config (www/js/main.js, loadLimits).
std::string client_config_json(const Config& config) {
    const boost::json::object limits{
        {"maxContentBytes", config.max_content_bytes},
        {"maxMessageBytes", config.max_message_bytes},
        {"idleTimeoutMs", config.idle_timeout.count()},
        {"maxRoomsPerUser", config.max_rooms_per_user},
    };
    return boost::json::serialize(limits) + "\n";
}
}  // namespace

std::string_view target_path(std::string_view target) {
    return target.substr(0, target.find_first_of("?#"));
}

void join_list_fields(Request& request) {
    constexpr std::array fields{http::field::connection, http::field::upgrade,
                                http::field::sec_websocket_extensions,
                                http::field::sec_websocket_protocol};
    for (const auto field : fields) {
        const auto [first, last] = request.equal_range(field);
        if (first == last || std::next(first) == last) {
            continue;
        }
        std::string joined;
        for (auto line = first; line != last; ++line) {
            if (!joined.empty()) {
                joined += ", ";
            }
            joined.append(line->value());
        }
        request.set(field, joined);  // replaces every line
    }
}

Router::Router(const StaticFiles& files, const metrics::Metrics& metrics, const Config& config,
               const std::atomic<bool>& accepting, std::function<bool()> room_reachable)
    : files_(files),
      metrics_(metrics),
      accepting_(accepting),
      room_reachable_(std::move(room_reachable)),
      client_config_(client_config_json(config)) {}

bool Router::is_chat_upgrade(const Request& request) {
    return boost::beast::websocket::is_upgrade(request) &&
           target_path(request.target()) == chat_path;
}

http::message_generator Router::plain(const Request& request, http::status status,
                                      std::string_view body, bool keep_alive) {
    return text(request, status, plain_text, std::string(body), keep_alive);
}

http::message_generator Router::respond(const Request& request) const {
    const auto method = request.method();
    if (method != http::verb::get && method != http::verb::head) {
        return plain(request, http::status::method_not_allowed, "method not allowed\n", true);
    }
    const auto path = target_path(request.target());
    if (path == "/healthz") {
        if (!accepting_.load(std::memory_order_relaxed)) {
            return plain(request, http::status::service_unavailable, "shutting down\n", true);
        }
        return !room_reachable_ || room_reachable_()
                   ? plain(request, http::status::ok, "ok\n", true)
                   : plain(request, http::status::service_unavailable, "room unavailable\n", true);
    }
    if (path == "/metrics") {
        return text(request, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                    metrics_.render(), true);
    }
    if (path == "/config") {
        return text(request, http::status::ok, "application/json", client_config_, true);
    }
    if (path == "/chat.proto") {
        return text(request, http::status::ok, plain_text, std::string(proto::schema_text), true);
    }
    if (path == chat_path) {
        return plain(request, http::status::upgrade_required,
                     "a WebSocket upgrade is required here\n", true);
    }

    const auto resolved = files_.resolve(path);
    if (const auto* refused = std::get_if<StaticFiles::Refused>(&resolved)) {
        return *refused == StaticFiles::Refused::bad_request
                   ? plain(request, http::status::bad_request, "bad request\n", true)
                   : plain(request, http::status::not_found, "not found\n", true);
    }
    const auto& found = std::get<StaticFiles::Found>(resolved);
    http::file_body::value_type file;
    boost::beast::error_code ec;
    file.open(found.file.c_str(), boost::beast::file_mode::scan, ec);
    if (ec) {
        return plain(request, http::status::not_found, "not found\n", true);
    }
    const auto size = file.size();
    const auto file_fields = [&](auto& response) {
        common_fields(response, request, true);
        response.set(http::field::content_type, found.mime_type);
        response.set(http::field::cache_control, "no-cache");
        response.content_length(size);
    };
    if (method == http::verb::head) {
        http::response<http::empty_body> response{http::status::ok, request.version()};
        file_fields(response);
        return response;
    }
    http::response<http::file_body> response{std::piecewise_construct,
                                             std::make_tuple(std::move(file)),
                                             std::make_tuple(http::status::ok, request.version())};
    file_fields(response);
    return response;
}

}  // namespace chat::session
