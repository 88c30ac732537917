// The registry's HTTP API (docs/formats.md#registry-api): JSON in and out, bearer tokens, a
// bounded queue in front of the traces, size limits, every refusal a 4xx with a message.
#include <fmt/format.h>
#include <sys/socket.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/registry/registry.h"

// Last: it brings <resolv.h>, whose `_res` macro breaks Eigen's headers included after it.
#include <httplib.h>

namespace tracecast::registry {

using nlohmann::json;

const OptionTable<ServeOptions>& serve_option_table() {
  static const OptionTable<ServeOptions> t = [] {
    OptionTable<ServeOptions> o("registry serve");
    o.integer("port", &ServeOptions::port, 0, 65535, "Port to listen on (0: any free one)")
        .integer("workers", &ServeOptions::workers, 0, 256, "Traces read at once (0: one per core)")
        .integer("queue", &ServeOptions::queue, 0, 100000, "Traces that may wait for a worker; one more is answered 503 with Retry-After")
        .integer("max_request_mb", &ServeOptions::max_request_mb, 1, 1024, "Largest request body; larger ones are refused with 413", "MB");
    return o;
  }();
  return t;
}

namespace {

void reply(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(j.dump(), "application/json");
}

//! At most `workers` traces read at once, at most `queue` more waiting; beyond that, no.
class Gate {
 public:
  Gate(int workers, int queue) : workers_(workers), queue_(queue) {}
  bool enter() {
    std::unique_lock<std::mutex> lock(m_);
    if (running_ >= workers_ && waiting_ >= queue_) return false;
    ++waiting_;
    cv_.wait(lock, [&] { return running_ < workers_; });
    --waiting_;
    ++running_;
    return true;
  }
  void leave() {
    {
      std::lock_guard<std::mutex> lock(m_);
      --running_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int workers_, queue_, running_ = 0, waiting_ = 0;
};

std::string bearer(const httplib::Request& req) {
  const std::string a = req.get_header_value("Authorization");
  return a.rfind("Bearer ", 0) == 0 ? a.substr(7) : "";
}

json body_of(const httplib::Request& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) throw Refusal(400, "the request body is not JSON");
  return j;
}

//! Runs a route: the caller authenticated, the body parsed, every refusal and error as JSON.
template <class F>
void handle(Registry& reg, const httplib::Request& req, httplib::Response& res, F&& fn) {
  try {
    reply(res, 200, fn(reg.authenticate(bearer(req))));
  } catch (const Refusal& r) {
    reply(res, r.status(), {{"error", r.what()}});
  } catch (const InputError& e) {
    reply(res, 400, {{"error", e.what()}});
  } catch (const std::exception& e) {
    log_message(LogLevel::Warning, fmt::format("registry: {} {}: {}", req.method, req.path, e.what()));
    reply(res, 500, {{"error", std::string("the registry failed: ") + e.what()}});
  }
}

void routes(httplib::Server& server, Registry& reg, Gate& gate) {
  server.Get("/v1/health", [&reg](const httplib::Request&, httplib::Response& res) { reply(res, 200, {{"status", "ok"}, {"store", reg.store_kind()}}); });
  server.Get("/v1/registry-key", [&reg](const httplib::Request&, httplib::Response& res) { reply(res, 200, reg.public_key()); });
  server.Post("/v1/tokens", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.create_token(c, body_of(req)); });
  });
  server.Get("/v1/tokens", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.tokens(c); });
  });
  server.Post("/v1/tokens/revoke", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.revoke_token(c, body_of(req)); });
  });
  server.Post("/v1/enrol", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.enrol(c, body_of(req)); });
  });
  server.Post("/v1/push", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.push(c, body_of(req)); });
  });
  server.Get("/v1/workshop", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.status(c); });
  });
  server.Get("/v1/audit", [&reg](const httplib::Request& req, httplib::Response& res) {
    handle(reg, req, res, [&](const Caller& c) { return reg.audit(c); });
  });
  server.Post("/v1/trace", [&reg, &gate](const httplib::Request& req, httplib::Response& res) {
    if (!gate.enter()) {
      res.set_header("Retry-After", "2");
      return reply(res, 503, {{"error", "the registry's trace queue is full; retry after 2 s"}});
    }
    struct Leave {
      Gate& g;
      ~Leave() { g.leave(); }
    } leave{gate};
    handle(reg, req, res, [&](const Caller& c) { return reg.trace(c, body_of(req)); });
  });
}

void answer_server_errors(httplib::Server& server, const ServeOptions& o) {
  server.set_error_handler([o](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a route's own answer
    const std::string why = res.status == 404   ? fmt::format("no such address: {} {}", req.method, req.path)
                            : res.status == 413 ? fmt::format("the request is larger than {} MB", o.max_request_mb)
                            : res.status == 411 ? std::string("a POST needs its Content-Length")
                                                : fmt::format("HTTP {}", res.status);
    reply(res, res.status, {{"error", why}});
  });
}

}  // namespace

void serve(Registry& reg, const ServeOptions& o, const std::function<void(int)>& ready, std::function<void()>* stop) {
  throw_problems("registry serve", serve_option_table().check(o));
  std::unique_ptr<httplib::Server> server;
  if (!o.cert.empty() || !o.cert_key.empty()) {
    if (o.cert.empty() || o.cert_key.empty()) throw InputError("HTTPS needs both --cert and --cert-key");
    for (const std::string& f : {o.cert, o.cert_key})
      if (!std::filesystem::exists(f)) throw InputError(f, "no such file");
    auto ssl = std::make_unique<httplib::SSLServer>(o.cert.c_str(), o.cert_key.c_str());
    if (!ssl->is_valid()) throw InputError(o.cert, "the certificate or its key could not be loaded (PEM files expected)");
    server = std::move(ssl);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  const int workers = o.workers > 0 ? o.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Gate gate(workers, o.queue);
  // Enough threads for every trace that may wait and run, and more for the quick routes and the
  // traces answered 503, so that a connection is rarely left unread while the queue is full.
  const std::size_t threads = static_cast<std::size_t>(workers + o.queue + 32);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_payload_max_length(static_cast<std::size_t>(o.max_request_mb) << 20);
  server->set_read_timeout(60, 0);
  auto listening = std::make_shared<socket_t>(INVALID_SOCKET);
  server->set_socket_options([listening](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof yes);
    *listening = sock;
  });
  answer_server_errors(*server, o);
  routes(*server, reg, gate);
  const int port = o.port == 0 ? server->bind_to_any_port(o.bind) : (server->bind_to_port(o.bind, o.port) ? o.port : -1);
  if (port < 0) throw InputError(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", o.bind, o.port));
  // The library listens with a backlog of 5: under a burst, connections beyond it wait for the
  // client's retransmissions (seconds apart), and the server drops them for sending nothing in
  // time. Listening again on the same socket only raises the backlog.
  if (*listening != INVALID_SOCKET) ::listen(*listening, SOMAXCONN);
  if (stop) *stop = [s = server.get()] { s->stop(); };
  if (ready) ready(port);
  server->listen_after_bind();
}

}  // namespace tracecast::registry
