#pragma once
// One io_context per thread: what a server runs on.

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace chat::net {

/// `count` io_contexts, each run by one thread of its own, rather than one
/// io_context that `count` threads run together. A connection is placed on
/// one of them (next()) and all its handlers run on that thread: its queue
/// and timers stay in one core's cache, a handler it posts for itself never
/// wakes a second thread to run it, and it needs no strand (the thread is
/// one). One io_context shared by two threads cost a third more CPU a
/// delivery in the saturated fan-out (bench/RESULTS.md, "An event loop per
/// thread"). Everything that is not a connection's (the hub, the listener,
/// signals, the cluster's Redis links) lives on main(), which takes
/// connections too.
class IoContexts {
  public:
    /// `count` >= 1 (0 is taken as 1).
    explicit IoContexts(std::size_t count);
    IoContexts(const IoContexts&) = delete;
    IoContexts& operator=(const IoContexts&) = delete;
    /// Destroys every context's pending handlers before any context: a
    /// handler of one may hold a connection whose socket is another's.
    ~IoContexts();

    boost::asio::io_context& main() noexcept { return *contexts_.front(); }
    /// The context for a new connection, in turn. Thread-safe.
    boost::asio::io_context& next() noexcept;

    /// Runs main() on the calling thread and each other context on a thread
    /// of its own, until stop(); returns once every thread has returned. An
    /// exception that escapes a handler stops them all and is rethrown here
    /// (the first, if several).
    void run();
    /// Makes every run() return soon. Thread-safe; before run() too.
    void stop() noexcept;

  private:
    /// An io_context whose handlers can be destroyed before it is.
    class Context : public boost::asio::io_context {
      public:
        Context() : io_context(1) {}  // one thread runs it: Asio may skip what many need
        using execution_context::shutdown;
    };

    void run_one(boost::asio::io_context& context) noexcept;

    std::vector<std::unique_ptr<Context>> contexts_;
    std::atomic<std::size_t> turn_{0};
    std::mutex mutex_;
    std::exception_ptr failure_;  // under mutex_
};

}  // namespace chat::net
