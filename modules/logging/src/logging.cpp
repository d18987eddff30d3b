#include "chat/logging/log.hpp"

#include <ostream>
#include <stdexcept>
#include <string>

#include <boost/core/null_deleter.hpp>
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/log/attributes/current_thread_id.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_file_backend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/support/date_time.hpp>
#include <boost/log/utility/setup/common_attributes.hpp>
#include <iostream>

namespace chat::logging {
namespace bl = boost::log;
namespace expr = boost::log::expressions;

std::optional<Level> parse_level(std::string_view text) {
    if (text == "trace")
        return Level::trace;
    if (text == "debug")
        return Level::debug;
    if (text == "info")
        return Level::info;
    if (text == "warning" || text == "warn")
        return Level::warning;
    if (text == "error")
        return Level::error;
    return std::nullopt;
}

std::ostream& operator<<(std::ostream& out, Level level) {
    constexpr std::string_view names[] = {"trace", "debug", "info", "warning", "error"};
    const auto index = static_cast<std::size_t>(level);
    return out << (index < std::size(names) ? names[index] : "?");
}

namespace {
BOOST_LOG_ATTRIBUTE_KEYWORD(severity, "Severity", Level)
BOOST_LOG_ATTRIBUTE_KEYWORD(conn, "Conn", std::uint64_t)
BOOST_LOG_ATTRIBUTE_KEYWORD(timestamp, "TimeStamp", boost::posix_time::ptime)
BOOST_LOG_ATTRIBUTE_KEYWORD(thread_id, "ThreadID", bl::attributes::current_thread_id::value_type)

// 2026-11-29 03:04:05.123456 [info] [0x00007f..] [conn 42] text
auto line_format() {
    return expr::stream << expr::format_date_time(timestamp, "%Y-%m-%d %H:%M:%S.%f") << " ["
                        << severity << "] [" << thread_id << "]"
                        << expr::if_(expr::has_attr(conn))[expr::stream << " [conn " << conn << "]"]
                        << " " << expr::smessage;
}

using ConsoleSink = bl::sinks::synchronous_sink<bl::sinks::text_ostream_backend>;
using FileSink = bl::sinks::synchronous_sink<bl::sinks::text_file_backend>;
}  // namespace

struct Logging::Sinks {
    boost::shared_ptr<ConsoleSink> console;
    boost::shared_ptr<FileSink> file;
};

Logging::Logging(const Config& config) : sinks_(std::make_unique<Sinks>()) {
    auto core = bl::core::get();
    bl::add_common_attributes();
    const auto filter = severity >= config.level;

    if (config.console) {
        auto backend = boost::make_shared<bl::sinks::text_ostream_backend>();
        backend->add_stream(boost::shared_ptr<std::ostream>(&std::cout, boost::null_deleter()));
        backend->auto_flush(true);
        sinks_->console = boost::make_shared<ConsoleSink>(backend);
        sinks_->console->set_formatter(line_format());
        sinks_->console->set_filter(filter);
        core->add_sink(sinks_->console);
    }

    if (!config.dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(config.dir, ec);
        if (ec) {
            throw std::runtime_error("cannot create log folder " + config.dir.string() + ": " +
                                     ec.message());
        }
        namespace kw = bl::keywords;
        auto backend = boost::make_shared<bl::sinks::text_file_backend>(
            kw::file_name = (config.dir / "sys.log").string(),
            kw::target_file_name = "sys-%Y%m%d-%H%M%S-%N.log",
            kw::rotation_size = config.rotation_bytes, kw::open_mode = std::ios::app,
            kw::enable_final_rotation = false);
        // Rotated files stay in the log folder; only the newest few are kept.
        backend->set_file_collector(bl::sinks::file::make_collector(
            kw::target = config.dir.string(), kw::max_files = config.max_old_files));
        backend->scan_for_files(bl::sinks::file::scan_matching);
        backend->auto_flush(true);
        sinks_->file = boost::make_shared<FileSink>(backend);
        sinks_->file->set_formatter(line_format());
        sinks_->file->set_filter(filter);
        core->add_sink(sinks_->file);
    }
    // Without a sink of ours, Boost.Log's default would print every level.
    if (!sinks_->console && !sinks_->file) {
        core->set_filter(severity >= config.level);
    }
}

Logging::~Logging() {
    auto core = bl::core::get();
    if (sinks_->console) {
        core->remove_sink(sinks_->console);
        sinks_->console->flush();
    }
    if (sinks_->file) {
        core->remove_sink(sinks_->file);
        sinks_->file->flush();
    }
}

std::string describe(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

}  // namespace chat::logging
