#include "tracecast/mesh/log.h"

#include <atomic>

namespace tracecast {

namespace {
LogSink g_sink;
std::atomic<int> g_min_level{100};  // nothing until a sink is installed
}  // namespace

void set_log_sink(LogSink sink, LogLevel min_level) {
  g_sink = std::move(sink);
  g_min_level = g_sink ? static_cast<int>(min_level) : 100;
}

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

void log_message(LogLevel level, const std::string& text) {
  if (log_enabled(level) && g_sink) g_sink(level, text);
}

}  // namespace tracecast
