#pragma once
// The plain-HTTP side of the contract: which request gets which answer.

#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/string_body.hpp>

#include "chat/hub/metrics.hpp"
#include "chat/session/static_files.hpp"

namespace chat::session {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

/// GET and HEAD only (405 otherwise): /healthz, /metrics, /chat.proto, and the
/// www folder's files ("/" is home.html); everything else 404, malformed paths
/// 400. The WebSocket upgrade itself is the session's business.
class Router {
  public:
    Router(const StaticFiles& files, const hub::Metrics& metrics) noexcept
        : files_(files), metrics_(metrics) {}

    http::message_generator respond(const Request& request) const;

    /// A WebSocket upgrade to the chat endpoint (/ws).
    static bool is_chat_upgrade(const Request& request);

    /// A short plain-text answer, for the session's own refusals (404 upgrade, 400, 431, 503).
    static http::message_generator plain(const Request& request, http::status status,
                                         std::string_view text, bool keep_alive);

  private:
    const StaticFiles& files_;
    const hub::Metrics& metrics_;
};

}  // namespace chat::session
