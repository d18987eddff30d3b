#pragma once
// Logging for every module: Boost.Log records with a level and, where there
// is one, the connection they are about.
//
//   CHAT_LOG(info) << "listening on " << endpoint;
//   CHAT_LOG_CONN(debug, id) << "login refused: name taken";
//
// Records go nowhere but Boost.Log's default console sink until a `Logging`
// object sets up the sinks; message contents are never logged at info.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/log/sources/global_logger_storage.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_logger.hpp>
#include <boost/log/utility/manipulators/add_value.hpp>

namespace chat::logging {

enum class Level { trace, debug, info, warning, error };

/// "trace", "debug", "info", "warning" (or "warn"), "error"; nullopt otherwise.
std::optional<Level> parse_level(std::string_view text);
std::ostream& operator<<(std::ostream& out, Level level);

/// What an exception says, for a log line: its what(), or "unknown exception".
std::string describe(const std::exception_ptr& error);

struct Config {
    Level level = Level::info;
    bool console = true;        // to stdout
    std::filesystem::path dir;  // empty: no file; else <dir>/sys.log
    std::size_t rotation_bytes = std::size_t{10} * 1024 * 1024;
    std::size_t max_old_files = 5;  // rotated files kept beside sys.log
};

/// Sets up the sinks of `Config`; they stay until this object is destroyed.
/// Throws std::runtime_error (with the path) when the log folder cannot be used.
class Logging {
  public:
    explicit Logging(const Config& config);
    ~Logging();
    Logging(const Logging&) = delete;
    Logging& operator=(const Logging&) = delete;

  private:
    struct Sinks;
    std::unique_ptr<Sinks> sinks_;
};

BOOST_LOG_INLINE_GLOBAL_LOGGER_DEFAULT(logger, boost::log::sources::severity_logger_mt<Level>)

}  // namespace chat::logging

#define CHAT_LOG(level) BOOST_LOG_SEV(::chat::logging::logger::get(), ::chat::logging::Level::level)

#define CHAT_LOG_CONN(level, conn) \
    CHAT_LOG(level) << ::boost::log::add_value("Conn", static_cast<std::uint64_t>(conn))
