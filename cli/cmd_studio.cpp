// tracecast studio: the browser studio, served on this machine until interrupted.
#include <fmt/format.h>

#include <csignal>
#include <thread>

#include "common.h"
#include "tracecast/studio/studio.h"

namespace tracecast::cli {

namespace {

studio::Studio* g_running = nullptr;

int run_studio(const studio::StudioOptions& o, const GlobalOptions& g) {
  studio::Studio s(o);
  const int port = s.bind();
  if (g.json) print_json({{"url", s.url()}, {"port", port}, {"session", s.session_dir().string()}});
  else if (!g.quiet) fmt::print("tracecast studio: open {}\n  session in {}; Ctrl-C stops the server\n", s.url(), s.session_dir().string());
  std::fflush(stdout);
  // SIGINT and SIGTERM stop the server; its session stays on disk for the next start.
  g_running = &s;
  for (const int sig : {SIGINT, SIGTERM})
    std::signal(sig, [](int) {
      if (g_running) std::thread([] { g_running->stop(); }).detach();
    });
  s.serve();
  g_running = nullptr;
  return kOk;
}

}  // namespace

std::function<int()> setup_studio(CLI::App& sub, GlobalOptions& g) {
  auto o = std::make_shared<studio::StudioOptions>();
  sub.add_option("--port", o->port, "Port to listen on (0: any free one)")->default_val(o->port)->check(CLI::Range(0, 65535));
  sub.add_option("--host", o->host, "Address to listen on; other than 127.0.0.1 makes the studio reachable from the network")
      ->default_val(o->host);
  sub.add_option("--workshop", o->workshop, "Folder the session is kept in (its session/ subfolder)")->default_val(o->workshop.string());
  sub.add_option("--max-upload", o->max_upload_mb, "Largest scan an upload may carry (MB)")->default_val(o->max_upload_mb)->check(CLI::Range(1, 16384));
  return [o, &g] { return run_studio(*o, g); };
}

}  // namespace tracecast::cli
