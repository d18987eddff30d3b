#include "test_server.hpp"

#include <fstream>
#include <random>

#include <string>
#include "chat/history/memory_history.hpp"
#include "chat/history/store.hpp"
#include "message_frames.hpp"

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

TestServer::TestServer(const session::Config& config, std::unique_ptr<hub::History> history)
    : io_(config.threads),
      history_(history ? std::move(history)
                       : std::make_unique<history::MemoryHistory>(history::Config{.db = {}})),
      server_(io_, config, metrics_, *history_),
      port_(server_.local_endpoint().port()) {
    server_.start();
    running_ = true;
    thread_ = std::jthread([this] {
        io_.run();
        const std::lock_guard lock(mutex_);
        running_ = false;
        stopped_.notify_all();
    });
}

bool TestServer::wait_stopped(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return stopped_.wait_for(lock, limit, [this] { return !running_; });
}

TestServer::~TestServer() {
    server_.stop();
    thread_ = {};  // joins once the shutdown is complete
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

void write_damaged_history(const std::filesystem::path& path, std::uint64_t count) {
    {
        history::Store store(path, count);
        std::vector<std::pair<std::uint64_t, hub::Frame>> messages;
        for (std::uint64_t id = 1; id <= count; ++id) {
            messages.emplace_back(id, message(id));
        }
        store.append(messages);
        store.mark_clean_stop();
    }  // closing the last connection moves everything into the file itself
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    // The page size: bytes 16-17 of the header, big-endian (1 means 65536).
    unsigned char size_bytes[2] = {};
    file.seekg(16);
    file.read(reinterpret_cast<char*>(size_bytes), 2);
    const std::size_t page_size =
        size_bytes[0] == 0 && size_bytes[1] == 1 ? 65'536 : size_bytes[0] * 256u + size_bytes[1];
    const auto pages = std::filesystem::file_size(path) / page_size;
    if (!file || page_size < 512 || pages < 8) {
        throw std::runtime_error("write_damaged_history: too few pages in " + path.string());
    }
    file.seekp(static_cast<std::streamoff>(pages / 2 * page_size));
    file << std::string(page_size, '\xa5');
    if (!file.flush()) {
        throw std::runtime_error("write_damaged_history: cannot write " + path.string());
    }
}

}  // namespace chat::test
