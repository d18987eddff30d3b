#pragma once
// The plain-HTTP side of the contract: which request gets which answer.

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/string_body.hpp>

#include "chat/metrics/metrics.hpp"
#include "chat/session/config.hpp"
#include "chat/session/static_files.hpp"

namespace chat::session {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

/// The path part of a request target: up to '?' or '#'.
std::string_view target_path(std::string_view target);

/// A list field sent on several lines is one comma-separated list (RFC 9110,
/// section 5.3): joins Connection, Upgrade and the WebSocket list fields onto
/// one line each, since Beast's upgrade checks read only the first line.
void join_list_fields(Request& request);

/// GET and HEAD only (405 otherwise): /healthz (503 once the server stops
/// taking logins, or while a cluster node cannot reach the room), /metrics, /config (the limits a
/// client must respect, as JSON), /chat.proto, and the www folder's files ("/" is home.html);
/// everything else 404, malformed paths 400. The WebSocket upgrade itself is
/// the session's business. A HEAD answer is its GET answer without the body.
class Router {
  public:
    /// /healthz asks `accepting`, and `room_reachable` when given (a cluster
    /// node: whether Redis can be reached).
    Router(const StaticFiles& files, const metrics::Metrics& metrics, const Config& config,
           const std::atomic<bool>& accepting, std::function<bool()> room_reachable = {});

    http::message_generator respond(const Request& request) const;

    /// A WebSocket upgrade to the chat endpoint (/ws). Expects join_list_fields().
    static bool is_chat_upgrade(const Request& request);

    /// A short plain-text answer, for the session's own refusals (404 upgrade,
    /// 400, 405, 413, 431, 503).
    static http::message_generator plain(const Request& request, http::status status,
                                         std::string_view text, bool keep_alive);

  private:
    const StaticFiles& files_;
    const metrics::Metrics& metrics_;
    const std::atomic<bool>& accepting_;
    const std::function<bool()> room_reachable_;
    const std::string client_config_;  // the body of /config
};

}  // namespace chat::session
