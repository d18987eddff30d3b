#pragma once
// The report: what the phases measured (Report) and the run's counters
// (RunState), printed as text or, with --json, as the JSON that bench/run
// keeps and bench/summarize.py reads. A figure that was not measured is -1
// in both.

#include <cstdint>
#include <optional>

#include "proc_sampler.hpp"
#include "run_state.hpp"

namespace chat::bench {

/// What the phases measured, for the report; the counters are in RunState.
struct Report {
    // The logins: how long they took, and how many succeeded.
    double login_seconds = 0;
    int connected = 0;

    // --rooms: the joins sent (one per client logged in), and the seconds
    // from the first sent to the last answered with welcome and history
    // (-1: none was).
    int joins_asked = 0;
    double join_seconds = -1;

    // The measured window: its length, the deliveries that arrived during
    // it (whenever sent), the deliveries expected of the messages sent in
    // it (sent x connected), and the CPU time spent meanwhile.
    double window_seconds = 0;
    std::uint64_t delivered_in_window_span = 0;
    std::uint64_t expected_deliveries = 0;
    std::optional<CpuTime> server_time;  // none without --server-pid
    CpuTime bench_time;
    MachineTime machine;

    // The server's memory, KiB (-1: not measured): before the logins, with
    // the idle clients logged in, and when the history flooders began asking.
    long rss_before = -1;
    long rss_after = -1;
    long rss_flood_start = -1;

    // --storm, in seconds from the first close (-1: never reached).
    double storm_back_seconds = -1;     // to the last client back
    double storm_settled_seconds = -1;  // to the last presence notice
};

/// Prints the report on stdout: text, or JSON with --json.
void print_report(const RunState& run, const Report& report);

}  // namespace chat::bench
