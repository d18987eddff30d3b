#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "histogram.hpp"

namespace chat::bench {

namespace {

namespace json = boost::json;

/// Seconds, rates and shares keep the three decimals the report has always
/// had (bench/results): the JSON holds the same values the text shows.
double rounded(double value) {
    return std::round(value * 1000) / 1000;
}

/// "code: count, ..." for the text.
std::string codes_text(const std::map<int, int>& seen) {
    std::ostringstream codes;
    bool first = true;
    for (const auto& [code, count] : seen) {
        codes << (first ? "" : ", ") << code << ": " << count;
        first = false;
    }
    return codes.str();
}

/// {"code": count, ...}: JSON keys are strings.
json::object codes_json(const std::map<int, int>& seen) {
    json::object codes;
    for (const auto& [code, count] : seen) {
        codes[std::to_string(code)] = count;
    }
    return codes;
}

/// The figures the text and the JSON both show, derived once from the
/// report and the counters. -1: not measured.
struct Figures {
    explicit Figures(const RunState& run, const Report& r)
        : received(run.traffic.delivered_in_window.load()),
          lost(r.expected_deliveries > received ? r.expected_deliveries - received : 0),
          delivered(static_cast<double>(r.delivered_in_window_span)),
          deliveries_per_second(r.window_seconds > 0 ? delivered / r.window_seconds : 0),
          server_cpu(r.server_time ? r.server_time->total() : -1),
          server_kernel(r.server_time ? r.server_time->system : -1) {
        for (const auto& h : run.histograms) {
            latency.merge(*h);
        }
        const long rss_delta =
            r.rss_after >= 0 && r.rss_before >= 0 ? r.rss_after - r.rss_before : -1;
        rss_per_connection = rss_delta >= 0 && r.connected > 0
                                 ? static_cast<double>(rss_delta) * 1024.0 / r.connected
                                 : -1;
        for (int k = 0; k < run.options.rooms; ++k) {
            const auto& room = run.rooms.room(k);
            const auto expected =
                room.sent_in_window.load() * static_cast<std::uint64_t>(room.members.load());
            const auto got = room.delivered_in_window.load();
            const auto room_lost = expected > got ? expected - got : 0;
            rooms_with_loss += room_lost > 0 ? 1 : 0;
            rooms_with_faults += room.faults.load() > 0 ? 1 : 0;
            worst_room_lost = std::max(worst_room_lost, room_lost);
            rooms_full += room.members.load() > 0 && room.members.load() == members(run, k) ? 1 : 0;
        }
    }

    /// The clients that room `k` was to have: Options::room_of's share.
    static int members(const RunState& run, int k) {
        const auto& o = run.options;
        return o.clients / o.rooms + (k < o.clients % o.rooms ? 1 : 0);
    }

    /// µs of `cpu` seconds per delivery in the window.
    [[nodiscard]] double per_delivery(double cpu) const {
        return delivered > 0 && cpu >= 0 ? cpu * 1e6 / delivered : -1;
    }

    std::uint64_t received;  // deliveries of messages sent in the window
    std::uint64_t lost;      // expected and not received
    double delivered;        // deliveries during the window, whenever sent
    double deliveries_per_second;
    double server_cpu;
    double server_kernel;
    double rss_per_connection = -1;  // bytes
    Histogram latency;               // every thread's, µs

    // --rooms: rooms whose members missed messages of the window, or saw a
    // fault; the most deliveries one room missed; rooms all of whose
    // clients joined.
    int rooms_with_loss = 0;
    int rooms_with_faults = 0;
    std::uint64_t worst_room_lost = 0;
    int rooms_full = 0;
};

void print_storm(const RunState& run, const Report& r) {
    const auto& o = run.options;
    const double clients = o.clients;
    const auto frames = static_cast<double>(run.storm.frames.load());
    const auto bytes = static_cast<double>(run.storm.bytes.load());
    if (o.json) {
        const json::object report{
            {"clients", o.clients},
            {"storm", true},
            {"login_seconds", rounded(r.login_seconds)},
            {"back", run.storm.back.load()},
            {"storm_back_seconds", rounded(r.storm_back_seconds)},
            {"storm_settled_seconds", rounded(r.storm_settled_seconds)},
            {"frames_per_client", rounded(frames / clients)},
            {"bytes_per_client", rounded(bytes / clients)},
        };
        std::cout << json::serialize(report) << "\n";
        return;
    }
    std::cout << std::fixed << std::setprecision(3) << "clients        " << o.clients
              << " logged in in " << r.login_seconds << " s\n"
              << "after restart  " << run.storm.back.load() << " back in " << r.storm_back_seconds
              << " s, presence traffic over after " << r.storm_settled_seconds << " s\n"
              << "per client     " << frames / clients << " frames, " << bytes / clients
              << " bytes received during the storm\n";
}

/// The keys bench/run keeps and bench/summarize.py reads: renaming one
/// breaks the summaries and the comparison with earlier results.
json::object measured_json(const RunState& run, const Report& r, const Figures& f) {
    const auto& o = run.options;
    const auto& latency = f.latency;
    return {
        {"clients", o.clients},
        {"connected", r.connected},
        {"login_seconds", rounded(r.login_seconds)},
        {"senders", o.senders},
        {"rate", rounded(o.rate)},
        {"window", o.window},
        {"aligned", o.aligned},
        {"ack", o.ack_all ? "all" : "echo"},
        {"size", o.size},
        {"threads", o.threads},
        {"idle", o.idle},
        {"duration_seconds", rounded(r.window_seconds)},
        {"sent", run.traffic.sent_in_window.load()},
        {"expected_deliveries", r.expected_deliveries},
        {"received", f.received},
        {"lost", f.lost},
        {"delivered_total", run.traffic.delivered_total.load()},
        {"deliveries_per_second", rounded(f.deliveries_per_second)},
        {"latency_us",
         {{"p50", latency.quantile(0.5)},
          {"p90", latency.quantile(0.9)},
          {"p99", latency.quantile(0.99)},
          {"p99.9", latency.quantile(0.999)},
          {"max", latency.max()}}},
        {"errors", run.traffic.errors.load()},
        {"gaps", run.traffic.gaps.load()},
        {"connect_failures", run.logins.failed.load()},
        {"close_codes", codes_json(run.close_codes)},
        {"flooders", o.flooders},
        {"flood_logins", run.flood.logins.load()},
        {"flood_sent", run.flood.frames_sent.load()},
        {"flood_close_codes", codes_json(run.flood_close_codes)},
        {"history_flooders", o.history_flooders},
        {"history_logins", run.history.logins.load()},
        {"history_requests", run.history.requests.load()},
        {"server_rss_flood_start_kib", r.rss_flood_start},
        {"server_rss_peak_kib", run.history.server_rss_peak_kib.load()},
        {"server_cpu_seconds", rounded(f.server_cpu)},
        {"server_cpu_us_per_delivery", rounded(f.per_delivery(f.server_cpu))},
        {"bench_cpu_seconds", rounded(r.bench_time.total())},
        {"bench_cpu_us_per_delivery", rounded(f.per_delivery(r.bench_time.total()))},
        {"server_kernel_seconds", rounded(f.server_kernel)},
        {"bench_kernel_seconds", rounded(r.bench_time.system)},
        {"machine_seconds",
         {{"busy", rounded(r.machine.busy)},
          {"irq", rounded(r.machine.irq)},
          {"steal", rounded(r.machine.steal)},
          {"idle", rounded(r.machine.idle)}}},
        {"server_rss_before_kib", r.rss_before},
        {"server_rss_after_kib", r.rss_after},
        {"server_rss_bytes_per_connection", rounded(f.rss_per_connection)},
        {"rooms", o.rooms},
        {"joins", r.joins_asked},
        {"joined", run.rooms.joined.load()},
        {"join_failures", run.rooms.join_failed.load()},
        {"join_seconds", rounded(r.join_seconds)},
        {"rooms_full", f.rooms_full},
        {"rooms_with_loss", f.rooms_with_loss},
        {"room_max_lost", f.worst_room_lost},
        {"rooms_with_faults", f.rooms_with_faults},
        {"room_order_faults", run.rooms.order_faults.load()},
        {"room_gaps", run.rooms.gaps.load()},
        {"wrong_room_frames", run.rooms.wrong_room.load()},
        {"join_order_faults", run.rooms.join_order.load()},
    };
}

void print_rooms_text(const RunState& run, const Report& r, const Figures& f) {
    const auto& o = run.options;
    const auto& rooms = run.rooms;
    std::cout << std::setprecision(3) << "rooms          " << rooms.joined.load() << " of "
              << r.joins_asked << " joined " << o.rooms << " rooms in " << r.join_seconds << " s ("
              << rooms.join_failed.load() << " failed); " << f.rooms_full << " rooms complete\n";
    if (!o.idle) {
        std::cout << "room loss      " << f.rooms_with_loss << " rooms lost messages, at most "
                  << f.worst_room_lost << " deliveries in one\n";
    }
    std::cout << "room faults    " << f.rooms_with_faults << " rooms: order "
              << rooms.order_faults.load() << ", gaps " << rooms.gaps.load() << ", wrong room "
              << rooms.wrong_room.load() << ", between welcome and history "
              << rooms.join_order.load() << "\n";
}

void print_measured_text(const RunState& run, const Report& r, const Figures& f) {
    const auto& o = run.options;
    const auto& latency = f.latency;
    std::cout << std::fixed << std::setprecision(3);
    std::cout << "clients        " << r.connected << " of " << o.clients << " logged in in "
              << r.login_seconds << " s (" << run.logins.failed.load() << " failed)\n";
    if (o.idle) {
        std::cout << "server RSS     " << r.rss_before << " KiB before, " << r.rss_after
                  << " KiB with the clients: " << std::setprecision(0) << f.rss_per_connection
                  << " bytes per connection\n";
    } else {
        std::cout << "sent           " << run.traffic.sent_in_window.load() << " messages in "
                  << r.window_seconds << " s by " << o.senders << " senders\n"
                  << "deliveries     " << std::setprecision(0) << f.deliveries_per_second
                  << " /s; expected " << r.expected_deliveries << ", received " << f.received
                  << ", lost " << f.lost << ", gaps " << run.traffic.gaps.load() << "\n"
                  << "latency (us)   p50 " << latency.quantile(0.5) << "  p90 "
                  << latency.quantile(0.9) << "  p99 " << latency.quantile(0.99) << "  p99.9 "
                  << latency.quantile(0.999) << "  max " << latency.max() << "\n"
                  << std::setprecision(3) << "cpu per delivery (us)  server "
                  << f.per_delivery(f.server_cpu) << " (kernel " << f.per_delivery(f.server_kernel)
                  << ")  bench " << f.per_delivery(r.bench_time.total()) << " (kernel "
                  << f.per_delivery(r.bench_time.system) << ")\n"
                  << "machine (s)    busy " << r.machine.busy << "  irq " << r.machine.irq
                  << "  steal " << r.machine.steal << "  idle " << r.machine.idle << " over "
                  << r.window_seconds << " s\n";
    }
    if (o.rooms > 0) {
        print_rooms_text(run, r, f);
    }
    std::cout << "errors         " << run.traffic.errors.load() << "; close codes seen: {"
              << codes_text(run.close_codes) << "}\n";
    if (o.flooders > 0) {
        std::cout << "flooders       " << o.flooders << ": " << run.flood.logins.load()
                  << " logins, " << run.flood.frames_sent.load() << " frames sent; close codes {"
                  << codes_text(run.flood_close_codes) << "}\n";
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
        return;
    }
    const Figures figures(run, report);
    if (run.options.json) {
        std::cout << json::serialize(measured_json(run, report, figures)) << "\n";
    } else {
        print_measured_text(run, report, figures);
    }
}

}  // namespace chat::bench
