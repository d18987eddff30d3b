#pragma once
// What the run costs, read from /proc and getrusage: the server's CPU time
// and memory (summed over its processes), the load generator's own CPU
// time, and the whole machine's, to tell the two apart from interrupts,
// other processes, the hypervisor and idleness. Sampled at the edges of a
// phase; the report shows the differences.

#include <vector>

namespace chat::bench {

/// CPU time in user space and in the kernel, in seconds.
struct CpuTime {
    double user = 0;
    double system = 0;

    [[nodiscard]] double total() const { return user + system; }
    CpuTime& operator+=(const CpuTime& other) {
        user += other.user;
        system += other.system;
        return *this;
    }
    CpuTime operator-(const CpuTime& other) const {
        return {user - other.user, system - other.system};
    }
};

/// The whole machine's time (all CPUs, in seconds) from /proc/stat, to tell
/// what the two processes used from what went to interrupts, to other
/// processes, to the hypervisor (steal) or to nothing (idle).
struct MachineTime {
    double busy = 0;  // user, nice, system
    double irq = 0;   // hardware interrupts and softirqs
    double steal = 0;
    double idle = 0;  // idle and iowait

    MachineTime operator-(const MachineTime& other) const {
        return {busy - other.busy, irq - other.irq, steal - other.steal, idle - other.idle};
    }
};

/// Summed over the server's processes (the nodes of a cluster, and its Redis).
CpuTime servers_cpu(const std::vector<int>& pids);

/// Their resident memory, KiB; a process that is gone counts 0.
long servers_rss_kib(const std::vector<int>& pids);

/// The first line of /proc/stat: all CPUs together.
MachineTime machine_time();

/// This process's CPU time: the load generator's.
CpuTime self_cpu();

}  // namespace chat::bench
