#include "chat/session/router.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "chat/proto/schema.hpp"

namespace chat::session {

namespace {
constexpr std::string_view server_name = "chat";
constexpr std::string_view chat_path = "/ws";

template <typename Body>
void common_fields(http::response<Body>& response, const Request& request, bool keep_alive) {
    response.set(http::field::server, server_name);
    response.set("X-Content-Type-Options", "nosniff");
    response.keep_alive(keep_alive && request.keep_alive());
}
}  // namespace

bool Router::is_chat_upgrade(const Request& request) {
    return boost::beast::websocket::is_upgrade(request) &&
           target_path(request.target()) == chat_path;
}

http::message_generator Router::plain(const Request& request, http::status status,
                                      std::string_view text, bool keep_alive) {
    http::response<http::string_body> response{status, request.version()};
    common_fields(response, request, keep_alive);
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    if (status == http::status::method_not_allowed) {
        response.set(http::field::allow, "GET, HEAD");
    }
    if (status == http::status::service_unavailable) {
        response.set(http::field::retry_after, "5");  // a connection limit: come back later
    }
    if (request.method() != http::verb::head) {
        response.body() = text;
    }
    response.prepare_payload();
    if (request.method() == http::verb::head) {
        response.content_length(text.size());
    }
    return response;
}

http::message_generator Router::respond(const Request& request) const {
    const auto method = request.method();
    if (method != http::verb::get && method != http::verb::head) {
        return plain(request, http::status::method_not_allowed, "method not allowed\n", true);
    }
    const auto path = target_path(request.target());
    if (path == "/healthz") {
        return plain(request, http::status::ok, "ok\n", true);
    }
    if (path == "/metrics") {
        http::response<http::string_body> response{http::status::ok, request.version()};
        common_fields(response, request, true);
        response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        response.body() = metrics_.render();
        response.prepare_payload();
        if (method == http::verb::head) {
            response.body().clear();
        }
        return response;
    }
    if (path == "/chat.proto") {
        http::response<http::string_body> response{http::status::ok, request.version()};
        common_fields(response, request, true);
        response.set(http::field::content_type, "text/plain; charset=utf-8");
        response.body() =
            method == http::verb::head ? std::string() : std::string(proto::schema_text);
        response.prepare_payload();
        response.content_length(proto::schema_text.size());
        return response;
    }
    if (path == chat_path) {
        auto response = plain(request, http::status::upgrade_required,
                              "a WebSocket upgrade is required here\n", true);
        return response;
    }

    const auto resolved = files_.resolve(request.target());
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
    if (method == http::verb::head) {
        http::response<http::empty_body> response{http::status::ok, request.version()};
        common_fields(response, request, true);
        response.set(http::field::content_type, found.mime_type);
        response.content_length(size);
        return response;
    }
    http::response<http::file_body> response{std::piecewise_construct,
                                             std::make_tuple(std::move(file)),
                                             std::make_tuple(http::status::ok, request.version())};
    common_fields(response, request, true);
    response.set(http::field::content_type, found.mime_type);
    response.set(http::field::cache_control, "no-cache");
    response.content_length(size);
    return response;
}

}  // namespace chat::session
