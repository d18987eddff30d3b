#include "chat/net/io_contexts.hpp"

#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>

namespace chat::net {

IoContexts::IoContexts(std::size_t count) {
    contexts_.resize(count == 0 ? 1 : count);
    for (auto& context : contexts_) {
        context = std::make_unique<Context>();
    }
}

IoContexts::~IoContexts() {
    // Twice: a handler destroyed in the first round may post to a context
    // already shut down (a plain post is kept until its context goes); the
    // second round destroys those before any context is. Their owners see
    // that such posts do not go on in a chain (the hub's writers' turns:
    // WriteScheduler::abandon()).
    for (int round = 0; round < 2; ++round) {
        for (auto& context : contexts_) {
            context->shutdown();
        }
    }
}

boost::asio::io_context& IoContexts::next() noexcept {
    return *contexts_[turn_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoContexts::run_one(boost::asio::io_context& context) noexcept {
    try {
        context.run();
    } catch (...) {
        {
            const std::lock_guard lock(mutex_);
            if (!failure_) {
                failure_ = std::current_exception();
            }
        }
        stop();
    }
}

void IoContexts::run() {
    {
        // A context may be idle (no connection yet): only stop() ends it.
        std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> busy;
        std::vector<std::jthread> threads;
        try {
            for (std::size_t i = 0; i < contexts_.size(); ++i) {
                busy.push_back(boost::asio::make_work_guard(*contexts_[i]));
                if (i > 0) {
                    threads.emplace_back([this, i] { run_one(*contexts_[i]); });
                }
            }
        } catch (...) {
            stop();  // a thread that could not start: those started must not wait for stop()
            throw;
        }
        run_one(main());
        threads.clear();  // joins: stop() ended them all
    }
    const std::lock_guard lock(mutex_);
    if (failure_) {
        std::rethrow_exception(std::exchange(failure_, nullptr));
    }
}

void IoContexts::stop() noexcept {
    for (auto& context : contexts_) {
        context->stop();
    }
}

}  // namespace chat::net
