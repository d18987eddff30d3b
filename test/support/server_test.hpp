#pragma once
// A real server for each test, and clients that speak the contract to it.

#include <boost/asio/this_coro.hpp>

#include "chat_client.hpp"
#include "run.hpp"
#include "test_server.hpp"

namespace chat::test {

/// Starts a server with `config`, runs `body(server)` (a coroutine) against it
/// within `limit`, then shuts the server down.
template <typename Body>
void with_server(Body&& body, session::Config config = test_config(),
                 std::chrono::steady_clock::duration limit = std::chrono::seconds(60)) {
    TestServer server(std::move(config));
    run([&]() -> awaitable<void> { co_await body(server); }, limit);
}

/// A client connected to `server` on /ws.
inline awaitable<ChatClient> connected(const TestServer& server) {
    ChatClient client(co_await asio::this_coro::executor);
    co_await client.connect(server.port());
    co_return client;
}

/// A client connected and logged in as `name` (the welcome consumed).
inline awaitable<ChatClient> logged_in(const TestServer& server, std::string_view name) {
    auto client = co_await connected(server);
    co_await client.login(name);
    co_return client;
}

}  // namespace chat::test
