// Talks to a server that runs elsewhere (the container test), on 127.0.0.1,
// with the tests' own contract client:
//   chat_probe PORT chat   two clients log in, each sees the other, a message
//                          reaches both, both log out
//   chat_probe PORT hold   one client logs in, prints "logged in", and waits
//                          for the server to close; exit 0 only on 1001
// Exit 0: as expected; 1: something else happened (said on stderr); 2: usage.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

#include "chat_client.hpp"
#include "run.hpp"

namespace {

using chat::ChatRequest;
using chat::test::ChatClient;
using chat::test::make_request;
using namespace std::chrono_literals;

void require(bool condition, std::string_view what) {
    if (!condition) {
        throw std::runtime_error(std::string(what));
    }
}

chat::awaitable<void> chat_between_two(std::uint16_t port) {
    const auto executor = co_await chat::asio::this_coro::executor;
    ChatClient amy(executor);
    ChatClient bob(executor);
    co_await amy.connect(port);
    co_await bob.connect(port);
    const auto welcome = co_await amy.login("probe-amy");
    require(welcome.user_list().contains("probe-amy"), "amy's welcome lists amy");
    const auto bob_welcome = co_await bob.login("probe-bob");
    require(bob_welcome.user_list().size() == 2, "bob's welcome lists both");
    const auto joined = co_await amy.expect("login");
    require(joined.user_name() == "probe-bob", "amy sees bob join");

    co_await amy.send(make_request("message", {}, "hello through the container"));
    for (auto* client : {&amy, &bob}) {
        const auto message = co_await client->expect("message");
        require(message.user_name() == "probe-amy" &&
                    message.content() == "hello through the container",
                "the message reaches both, unchanged");
    }
    co_await bob.send(make_request("logout"));
    require(co_await bob.expect_close() == 1000, "bob's logout closes normally");
    const auto left = co_await amy.expect("logout");
    require(left.user_name() == "probe-bob", "amy sees bob leave");
    co_await amy.send(make_request("logout"));
    require(co_await amy.expect_close() == 1000, "amy's logout closes normally");
    std::cout << "two clients logged in, chatted and logged out" << std::endl;
}

chat::awaitable<void> hold_until_closed(std::uint16_t port) {
    ChatClient client(co_await chat::asio::this_coro::executor);
    co_await client.connect(port);
    co_await client.login("probe-held");
    std::cout << "logged in" << std::endl;
    const auto code = co_await client.wait_close(60s);
    std::cout << "closed by the server with " << code << std::endl;
    require(code == 1001, "the server's close is 1001 (going away)");
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view usage = "usage: chat_probe PORT chat|hold\n";
    if (argc != 3) {
        std::cerr << usage;
        return 2;
    }
    const std::string_view port_text = argv[1];
    const std::string_view mode = argv[2];
    std::uint16_t port = 0;
    const auto [end, error] = std::from_chars(port_text.begin(), port_text.end(), port);
    if (error != std::errc{} || end != port_text.end() || port == 0 ||
        (mode != "chat" && mode != "hold")) {
        std::cerr << usage;
        return 2;
    }
    try {
        if (mode == "chat") {
            chat::test::run([port] { return chat_between_two(port); }, 30s);
        } else {
            chat::test::run([port] { return hold_until_closed(port); }, 90s);
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "chat_probe " << mode << ": " << e.what() << '\n';
        return 1;
    }
}
