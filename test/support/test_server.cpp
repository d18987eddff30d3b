#include "test_server.hpp"

#include <random>

#include <string>
#include "chat/history/memory_history.hpp"

namespace chat::test {

session::Config test_config() {
    session::Config config;
    config.address = "127.0.0.1";
    config.port = 0;
    config.threads = 2;
    config.www_root = CHAT_SOURCE_WWW_DIR;
    config.shutdown_grace = std::chrono::seconds(3);
    return config;
}

TestServer::TestServer(session::Config config, std::unique_ptr<hub::History> history)
    : io_(static_cast<int>(config.threads)),
      history_(history ? std::move(history) : std::make_unique<history::MemoryHistory>(100'000)),
      server_(io_, config, metrics_, *history_),
      port_(server_.local_endpoint().port()) {
    server_.start();
    running_ = config.threads;
    for (unsigned i = 0; i < config.threads; ++i) {
        threads_.emplace_back([this] {
            io_.run();
            const std::lock_guard lock(mutex_);
            if (--running_ == 0) {
                stopped_.notify_all();
            }
        });
    }
}

bool TestServer::wait_stopped(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return stopped_.wait_for(lock, limit, [this] { return running_ == 0; });
}

TestServer::~TestServer() {
    server_.stop();
    threads_.clear();  // joins once the shutdown is complete
}

TempDir::TempDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("chat-test-" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

}  // namespace chat::test
