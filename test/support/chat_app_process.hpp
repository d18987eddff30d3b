#pragma once
// chat_app as a child process of a test: its console output is collected by
// a thread, and the test waits on it (or on the process) with a time limit.

#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

extern char** environ;

namespace chat::test {

/// A child process; its console output is collected by a thread.
class Process {
  public:
    Process(std::string program, std::vector<std::string> args) {
        int out[2];
        BOOST_TEST_REQUIRE(pipe(out) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_adddup2(&actions, out[1], 2);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        args.insert(args.begin(), program);
        std::vector<char*> argv;
        for (auto& arg : args) {
            argv.push_back(arg.data());
        }
        argv.push_back(nullptr);
        const int spawned =
            posix_spawnp(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        close(out[1]);
        BOOST_TEST_REQUIRE(spawned == 0);
        reader_ = std::jthread([this, fd = out[0]] {
            char buffer[4096];
            for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) {
                const std::lock_guard lock(mutex_);
                output_.append(buffer, static_cast<std::size_t>(n));
                changed_.notify_all();
            }
            close(fd);
        });
    }

    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    ~Process() {
        if (pid_ > 0 && !exited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }

    /// The port from the "listening on ADDRESS:PORT," line, waiting for it.
    std::uint16_t port() {
        std::unique_lock lock(mutex_);
        constexpr std::string_view marker = "listening on ";
        std::size_t comma = std::string::npos;
        const bool found = changed_.wait_for(lock, std::chrono::seconds(20), [&] {
            const auto line = output_.find(marker);
            comma = line == std::string::npos ? line : output_.find(',', line);
            return comma != std::string::npos;
        });
        BOOST_TEST_REQUIRE(found, "no listening line in:\n" << output_);
        const auto colon = output_.rfind(':', comma);
        return static_cast<std::uint16_t>(std::stoi(output_.substr(colon + 1, comma - colon - 1)));
    }

    void signal(int number) { kill(pid_, number); }
    pid_t pid() const noexcept { return pid_; }

    /// Lowers the process's file descriptor limit (soft and hard) to `limit`.
    void limit_files(rlim_t limit) {
        const rlimit value{limit, limit};
        BOOST_TEST_REQUIRE(prlimit(pid_, RLIMIT_NOFILE, &value, nullptr) == 0);
    }

    /// Resident memory in KiB, from /proc.
    long rss_kib() const {
        std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
        for (std::string line; std::getline(status, line);) {
            if (line.starts_with("VmRSS:")) {
                return std::stol(line.substr(6));
            }
        }
        return -1;
    }

    /// CPU seconds (user + system) the process has used so far.
    double cpu_seconds() const {
        std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string field;
        double ticks = 0;
        for (int i = 3; i <= 15 && fields >> field; ++i) {
            if (i == 14 || i == 15) {  // utime, stime
                ticks += std::stod(field);
            }
        }
        return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
    }

    /// Waits until the output holds `text` (`times` times); false if it does
    /// not within `limit`.
    bool wait_output(std::string_view text, std::chrono::milliseconds limit, int times = 1) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] {
            int found = 0;
            for (auto at = output_.find(text); at != std::string::npos;
                 at = output_.find(text, at + text.size())) {
                ++found;
            }
            return found >= times;
        });
    }

    /// Waits for the process to end (a pidfd polled, no sleeping); its exit status or -1.
    int wait_exit(std::chrono::milliseconds limit) {
        const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
        BOOST_TEST_REQUIRE(fd >= 0);
        pollfd entry{fd, POLLIN, 0};
        const int ready = poll(&entry, 1, static_cast<int>(limit.count()));
        close(fd);
        if (ready != 1) {
            return -1;
        }
        int status = 0;
        waitpid(pid_, &status, 0);
        exited_ = true;
        reader_.join();
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    std::string output() {
        const std::lock_guard lock(mutex_);
        return output_;
    }

  private:
    pid_t pid_ = -1;
    bool exited_ = false;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    std::jthread reader_;
};

/// chat_app as a child process.
class ChatApp : public Process {
  public:
    explicit ChatApp(std::vector<std::string> args)
        : Process(CHAT_APP_PATH, with_history_in_memory(std::move(args))) {}

  private:
    // History in memory unless the test names a file: no data/ folder left
    // behind, none shared by tests running at once.
    static std::vector<std::string> with_history_in_memory(std::vector<std::string> args) {
        if (std::find(args.begin(), args.end(), "--history-db") == args.end()) {
            args.insert(args.end(), {"--history-db", ""});
        }
        return args;
    }
};

}  // namespace chat::test
