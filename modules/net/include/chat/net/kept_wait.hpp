#pragma once
// One coroutine's wait, kept by whoever is to end it: 16 bytes where a
// channel or a timer costs hundreds, for a wait with one waiter that is
// never cancelled (a writer's take(), a session waiting for its writer;
// docs/architecture.md, memory per idle connection).

#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/post.hpp>

#include "chat/net/asio.hpp"

namespace chat::net {

/// Holds the completion handler of one suspended operation (signature
/// void(), from an async_initiate) until end() resumes it through an
/// executor, never inline. Not thread-safe: its owner guards it (a lock or a
/// strand). A wait still kept when this is destroyed is destroyed with it.
///
/// Asio 1.81's any_completion_handler is swapped here, never move-assigned
/// (its move assignment recurses until the stack ends), and posted wrapped
/// (its own executor cannot be posted to): docs/architecture.md, trap 12.
class KeptWait {
  public:
    KeptWait() = default;
    KeptWait(const KeptWait&) = delete;  // moved between owners with swap() only
    KeptWait& operator=(const KeptWait&) = delete;
    ~KeptWait() = default;

    template <typename Handler>
    void keep(Handler&& handler) {
        asio::any_completion_handler<void()> kept(std::forward<Handler>(handler));
        handler_.swap(kept);
    }
    bool kept() const noexcept { return static_cast<bool>(handler_); }
    void swap(KeptWait& other) noexcept { handler_.swap(other.handler_); }

    /// Resumes the kept wait through `executor`; nothing if none is kept.
    template <typename Executor>
    void end(const Executor& executor) {
        if (!handler_) {
            return;
        }
        asio::any_completion_handler<void()> handler;
        handler.swap(handler_);
        asio::post(executor, [handler = std::move(handler)]() mutable { std::move(handler)(); });
    }

  private:
    asio::any_completion_handler<void()> handler_;
};

}  // namespace chat::net
