#include "proc_sampler.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace chat::bench {

namespace {
/// Fields 14 and 15 of /proc/PID/stat (utime and stime, in clock ticks);
/// zero for a process that is gone.
CpuTime process_cpu(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return {};
    }
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> field; ++i) {  // field 3 is the state
        if (i == 14)
            utime = std::stod(field);
        if (i == 15) {
            stime = std::stod(field);
            break;
        }
    }
    const auto tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return {utime / tick, stime / tick};
}

/// VmRSS of /proc/PID/status; -1 for a process that is gone.
long process_rss_kib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

}  // namespace

CpuTime servers_cpu(const std::vector<int>& pids) {
    CpuTime time;
    for (const int pid : pids) {
        time += process_cpu(pid);
    }
    return time;
}

long servers_rss_kib(const std::vector<int>& pids) {
    long kib = 0;
    for (const int pid : pids) {
        kib += std::max(process_rss_kib(pid), 0L);
    }
    return kib;
}

CpuTime self_cpu() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return {seconds(usage.ru_utime), seconds(usage.ru_stime)};
}

MachineTime machine_time() {
    std::ifstream stat("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    const auto tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return {(user + nice + system) / tick, (irq + softirq) / tick, steal / tick,
            (idle + iowait) / tick};
}

}  // namespace chat::bench
