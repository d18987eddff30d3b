#pragma once
// Asio names as the project spells them, so that every coroutine reads alike.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace chat {
namespace asio = boost::asio;
using error_code = boost::system::error_code;

template <typename T = void>
using awaitable = asio::awaitable<T>;

/// Completion token for operations whose errors are results, not exceptions:
/// `auto [ec, n] = co_await op(..., use_nothrow);`
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace chat
