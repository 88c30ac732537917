// The libraries' one way to say something beyond their results: a log sink with levels. Library
// code never prints; the application installs a sink (the CLI: stderr, behind --verbose) and
// decides what is shown. Without a sink nothing is formatted or written.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>
#include <utility>

namespace tracecast {

enum class LogLevel { Debug = 0, Info = 1, Warning = 2 };

using LogSink = std::function<void(LogLevel, const std::string&)>;

//! Installs `sink` for messages at `min_level` and above (an empty sink: none). Not thread-safe
//! against concurrent logging: call it once at start-up.
void set_log_sink(LogSink sink, LogLevel min_level = LogLevel::Info);
//! Whether a message at `level` would reach the sink (cheap: check before formatting).
bool log_enabled(LogLevel level);
void log_message(LogLevel level, const std::string& text);

//! Formats (fmt syntax) and logs at Debug, only when a sink takes Debug messages.
template <class... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(LogLevel::Debug)) log_message(LogLevel::Debug, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tracecast
