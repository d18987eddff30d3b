#include "report.hpp"

#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "histogram.hpp"

namespace chat::bench {

namespace {

void print_storm(const RunState& run, const Report& r) {
    const auto& o = run.options;
    const double clients = o.clients;
    const auto frames = static_cast<double>(run.storm.frames.load());
    const auto bytes = static_cast<double>(run.storm.bytes.load());
    std::cout << std::fixed << std::setprecision(3);
    if (o.json) {
        std::cout << "{\n  \"clients\": " << o.clients << ", \"storm\": true"
                  << ", \"login_seconds\": " << r.login_seconds
                  << ", \"back\": " << run.storm.back.load()
                  << ",\n  \"storm_back_seconds\": " << r.storm_back_seconds
                  << ", \"storm_settled_seconds\": " << r.storm_settled_seconds
                  << ",\n  \"frames_per_client\": " << frames / clients
                  << ", \"bytes_per_client\": " << bytes / clients << "\n}\n";
        return;
    }
    std::cout << "clients        " << o.clients << " logged in in " << r.login_seconds << " s\n"
              << "after restart  " << run.storm.back.load() << " back in " << r.storm_back_seconds
              << " s, presence traffic over after " << r.storm_settled_seconds << " s\n"
              << "per client     " << frames / clients << " frames, " << bytes / clients
              << " bytes received during the storm\n";
}

void print_measured(const RunState& run, const Report& r) {
    const auto expected = r.expected_deliveries;
    const auto connected = r.connected;
    const auto& o = run.options;
    Histogram latency;
    for (const auto& h : run.histograms) {
        latency.merge(*h);
    }
    const auto received = run.traffic.delivered_in_window.load();
    const auto delivered = static_cast<double>(r.delivered_in_window_span);
    const double rate = r.window_seconds > 0 ? delivered / r.window_seconds : 0;
    // -1: not measured (no --server-pid), in the JSON as in the text.
    const double server_cpu = r.server_time ? r.server_time->total() : -1;
    const double server_kernel = r.server_time ? r.server_time->system : -1;
    const auto per_delivery = [&](double cpu) {
        return r.delivered_in_window_span > 0 && cpu >= 0 ? cpu * 1e6 / delivered : -1;
    };
    const auto format_codes = [&](const std::map<int, int>& seen) {
        std::ostringstream codes;
        bool first = true;
        for (const auto& [code, count] : seen) {
            codes << (first ? "" : ", ") << (o.json ? "\"" : "") << code << (o.json ? "\": " : ": ")
                  << count;
            first = false;
        }
        return codes.str();
    };
    const auto codes = format_codes(run.close_codes);
    const auto flood_codes = format_codes(run.flood_close_codes);
    const long rss_delta = r.rss_after >= 0 && r.rss_before >= 0 ? r.rss_after - r.rss_before : -1;
    const double rss_per_connection =
        rss_delta >= 0 && connected > 0 ? static_cast<double>(rss_delta) * 1024.0 / connected : -1;
    std::cout << std::fixed << std::setprecision(3);
    if (o.json) {
        std::cout << "{\n"
                  << "  \"clients\": " << o.clients << ", \"connected\": " << connected
                  << ", \"login_seconds\": " << r.login_seconds << ",\n"
                  << "  \"senders\": " << o.senders << ", \"rate\": " << o.rate
                  << ", \"window\": " << o.window
                  << ", \"aligned\": " << (o.aligned ? "true" : "false") << ", \"ack\": \""
                  << (o.ack_all ? "all" : "echo") << "\""
                  << ", \"size\": " << o.size << ", \"threads\": " << o.threads
                  << ", \"idle\": " << (o.idle ? "true" : "false") << ",\n"
                  << "  \"duration_seconds\": " << r.window_seconds
                  << ", \"sent\": " << run.traffic.sent_in_window.load()
                  << ", \"expected_deliveries\": " << expected << ", \"received\": " << received
                  << ", \"lost\": " << (expected > received ? expected - received : 0)
                  << ", \"delivered_total\": " << run.traffic.delivered_total.load()
                  << ", \"deliveries_per_second\": " << rate << ",\n"
                  << "  \"latency_us\": {\"p50\": " << latency.quantile(0.5)
                  << ", \"p90\": " << latency.quantile(0.9)
                  << ", \"p99\": " << latency.quantile(0.99)
                  << ", \"p99.9\": " << latency.quantile(0.999) << ", \"max\": " << latency.max()
                  << "},\n"
                  << "  \"errors\": " << run.traffic.errors.load()
                  << ", \"gaps\": " << run.traffic.gaps.load()
                  << ", \"connect_failures\": " << run.logins.failed.load()
                  << ", \"close_codes\": {" << codes << "},\n"
                  << "  \"flooders\": " << o.flooders
                  << ", \"flood_logins\": " << run.flood.logins.load()
                  << ", \"flood_sent\": " << run.flood.frames_sent.load()
                  << ", \"flood_close_codes\": {" << flood_codes << "},\n"
                  << "  \"history_flooders\": " << o.history_flooders
                  << ", \"history_logins\": " << run.history.logins.load()
                  << ", \"history_requests\": " << run.history.requests.load()
                  << ", \"server_rss_flood_start_kib\": " << r.rss_flood_start
                  << ", \"server_rss_peak_kib\": " << run.history.server_rss_peak_kib.load()
                  << ",\n"
                  << "  \"server_cpu_seconds\": " << server_cpu
                  << ", \"server_cpu_us_per_delivery\": " << per_delivery(server_cpu)
                  << ", \"bench_cpu_seconds\": " << r.bench_time.total()
                  << ", \"bench_cpu_us_per_delivery\": " << per_delivery(r.bench_time.total())
                  << ",\n  \"server_kernel_seconds\": " << server_kernel
                  << ", \"bench_kernel_seconds\": " << r.bench_time.system
                  << ", \"machine_seconds\": {\"busy\": " << r.machine.busy
                  << ", \"irq\": " << r.machine.irq << ", \"steal\": " << r.machine.steal
                  << ", \"idle\": " << r.machine.idle << "},\n"
                  << "  \"server_rss_before_kib\": " << r.rss_before
                  << ", \"server_rss_after_kib\": " << r.rss_after
                  << ", \"server_rss_bytes_per_connection\": " << rss_per_connection << "\n}\n";
        return;
    }
    std::cout << "clients        " << connected << " of " << o.clients << " logged in in "
              << r.login_seconds << " s (" << run.logins.failed.load() << " failed)\n";
    if (o.idle) {
        std::cout << "server RSS     " << r.rss_before << " KiB before, " << r.rss_after
                  << " KiB with the clients: " << std::setprecision(0) << rss_per_connection
                  << " bytes per connection\n";
    } else {
        std::cout << "sent           " << run.traffic.sent_in_window.load() << " messages in "
                  << r.window_seconds << " s by " << o.senders << " senders\n"
                  << "deliveries     " << std::setprecision(0) << rate << " /s; expected "
                  << expected << ", received " << received << ", lost "
                  << (expected > received ? expected - received : 0) << ", gaps "
                  << run.traffic.gaps.load() << "\n"
                  << "latency (us)   p50 " << latency.quantile(0.5) << "  p90 "
                  << latency.quantile(0.9) << "  p99 " << latency.quantile(0.99) << "  p99.9 "
                  << latency.quantile(0.999) << "  max " << latency.max() << "\n"
                  << std::setprecision(3) << "cpu per delivery (us)  server "
                  << per_delivery(server_cpu) << " (kernel " << per_delivery(server_kernel)
                  << ")  bench " << per_delivery(r.bench_time.total()) << " (kernel "
                  << per_delivery(r.bench_time.system) << ")\n"
                  << "machine (s)    busy " << r.machine.busy << "  irq " << r.machine.irq
                  << "  steal " << r.machine.steal << "  idle " << r.machine.idle << " over "
                  << r.window_seconds << " s\n";
    }
    std::cout << "errors         " << run.traffic.errors.load() << "; close codes seen: {" << codes
              << "}\n";
    if (o.flooders > 0) {
        std::cout << "flooders       " << o.flooders << ": " << run.flood.logins.load()
                  << " logins, " << run.flood.frames_sent.load() << " frames sent; close codes {"
                  << flood_codes << "}\n";
    }
    if (o.history_flooders > 0) {
        const long peak = run.history.server_rss_peak_kib.load();
        std::cout << "history flood  " << o.history_flooders
                  << " clients: " << run.history.logins.load() << " logins, "
                  << run.history.requests.load() << " requests; server RSS " << r.rss_flood_start
                  << " KiB when they began asking, peak " << peak << " KiB (+"
                  << (peak >= 0 && r.rss_flood_start >= 0 ? peak - r.rss_flood_start : -1)
                  << " KiB)\n";
    }
}

}  // namespace

void print_report(const RunState& run, const Report& report) {
    if (run.options.storm > 0) {
        print_storm(run, report);
    } else {
        print_measured(run, report);
    }
}

}  // namespace chat::bench
