// A client of the registry's HTTP API.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "tracecast/mesh/errors.h"
#include "tracecast/registry/registry.h"

// Last: it brings <resolv.h>, whose `_res` macro breaks Eigen's headers included after it.
#include <httplib.h>

namespace tracecast::registry {

using nlohmann::json;

//! The address itself, or InputError: the library throws its own error for another scheme.
static const std::string& registry_address(const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw InputError(fmt::format("--registry '{}': not an http:// or https:// address", url));
  return url;
}

struct Client::Impl {
  std::string url;
  int retries = 5;
  httplib::Client http;
  Impl(const std::string& u, const std::string& token, const std::string& ca_cert) : url(u), http(registry_address(u)) {
    if (!http.is_valid()) throw InputError(fmt::format("--registry '{}': not an http:// or https:// address", u));
    if (!ca_cert.empty()) {
      if (!std::filesystem::exists(ca_cert)) throw InputError(ca_cert, "no such certificate file");
      http.set_ca_cert_path(ca_cert.c_str());
    }
    http.set_bearer_token_auth(token);
    http.set_connection_timeout(10, 0);
    http.set_read_timeout(600, 0);
    http.set_write_timeout(600, 0);
  }
  json answer(const httplib::Result& r, const std::string& path) {
    if (!r) throw ProcessingError(fmt::format("registry {}: {} ({})", url, httplib::to_string(r.error()), path));
    json j = json::parse(r->body, nullptr, false);
    if (r->status != 200) {
      const std::string why = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : r->body;
      throw Refusal(r->status, why);
    }
    if (j.is_discarded()) throw ProcessingError(fmt::format("registry {}: {} answered something that is not JSON", url, path));
    return j;
  }
};

Client::Client(const std::string& url, const std::string& token, const std::string& ca_cert)
    : impl_(std::make_unique<Impl>(url, token, ca_cert)) {}
Client::~Client() = default;

void Client::set_retries(int n) { impl_->retries = std::max(0, n); }

namespace {

//! A request that may be sent again when the connection fails before an answer: reads, and
//! traces (which change nothing but the audit log). Never a push: one the registry committed but
//! whose answer was lost would come back as a history pushed twice.
bool may_retry(const std::string& method, const std::string& path) { return method == "GET" || path == "/v1/trace"; }

//! Sends; a failed connection is tried again five times, and a busy registry's 503 after the
//! Retry-After it asks for, for up to ten minutes, when the request may be sent again.
//! A failure worth another attempt: the connection, not the certificate or the protocol.
bool transient(const httplib::Result& r) {
  return !r && (r.error() == httplib::Error::Connection || r.error() == httplib::Error::Read || r.error() == httplib::Error::Write);
}

template <class Send>
httplib::Result send_with_retries(const std::string& method, const std::string& path, int retries, Send&& send) {
  httplib::Result r = send();
  if (!may_retry(method, path)) return r;
  for (int attempt = 0; attempt < retries && transient(r); ++attempt) {  // 0.5, 1, 2, 4, 8 s apart
    std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
    r = send();
  }
  for (double waited = 0; r && r->status == 503 && waited < 600;) {
    const std::string after = r->get_header_value("Retry-After");
    const double s = std::clamp(after.empty() ? 2.0 : std::atof(after.c_str()), 0.1, 60.0);
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
    waited += s;
    r = send();
  }
  return r;
}

}  // namespace

json Client::get(const std::string& path) {
  return impl_->answer(send_with_retries("GET", path, impl_->retries, [&] { return impl_->http.Get(path); }), path);
}

json Client::post(const std::string& path, const json& body) {
  const std::string text = body.dump();
  return impl_->answer(send_with_retries("POST", path, impl_->retries, [&] { return impl_->http.Post(path, text, "application/json"); }), path);
}

}  // namespace tracecast::registry
