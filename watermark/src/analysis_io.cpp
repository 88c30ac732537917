// The key-independent analysis of a scan as data: what a scanner sends to a registry to have it
// read under keys the scanner does not hold, without sending the scan (docs/formats.md#mark-analysis).
#include <fmt/format.h>
#include <sodium.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "tile.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::watermark {

namespace {

constexpr char kFormat[] = "tracecast-mark-analysis 1";
constexpr std::size_t kValues = static_cast<std::size_t>(detail::kBins) * detail::kBins;

//! Doubles as base64 of their little-endian IEEE bytes: exact, unlike decimal text.
std::string doubles_base64(const std::vector<double>& v) {
  std::vector<unsigned char> bytes(8 * v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint64_t u;
    std::memcpy(&u, &v[i], 8);
    for (int b = 0; b < 8; ++b) bytes[8 * i + b] = static_cast<unsigned char>(u >> (8 * b));
  }
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();
  return out;
}

std::vector<double> base64_doubles(const nlohmann::json& j, const char* field) {
  if (!j.contains(field) || !j[field].is_string()) throw InputError(fmt::format("mark analysis: '{}' is missing or not a string", field));
  const std::string& text = j[field].get_ref<const std::string&>();
  std::vector<unsigned char> bytes(8 * kValues);
  std::size_t n = 0;
  if (sodium_base642bin(bytes.data(), bytes.size(), text.data(), text.size(), nullptr, &n, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      n != bytes.size())
    throw InputError(fmt::format("mark analysis: '{}' is not base64 of {} numbers", field, kValues));
  std::vector<double> v(kValues);
  for (std::size_t i = 0; i < kValues; ++i) {
    std::uint64_t u = 0;
    for (int b = 0; b < 8; ++b) u |= static_cast<std::uint64_t>(bytes[8 * i + b]) << (8 * b);
    std::memcpy(&v[i], &u, 8);
    if (!std::isfinite(v[i])) throw InputError(fmt::format("mark analysis: '{}' holds a non-finite number", field));
  }
  return v;
}

template <class T>
T field(const nlohmann::json& j, const char* name) {
  if (!j.contains(name)) throw InputError(fmt::format("mark analysis: '{}' is missing", name));
  try {
    return j[name].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError(fmt::format("mark analysis: '{}' has the wrong type", name));
  }
}

Outcome parse_outcome(const std::string& s) {
  for (Outcome o : {Outcome::found, Outcome::no_mark, Outcome::insufficient_surface})
    if (s == outcome_name(o)) return o;
  throw InputError(fmt::format("mark analysis: unknown outcome '{}'", s));
}

}  // namespace

nlohmann::json analysis_to_json(const Analysis& a) {
  const Detection& d = a.base;
  nlohmann::json j = {{"format", kFormat},      {"outcome", outcome_name(d.outcome)}, {"reason", d.reason},
                      {"area_mm2", d.area_mm2}, {"unit_factor", d.unit_factor},      {"samples", d.samples},
                      {"scale", d.scale},       {"front", {d.front.x(), d.front.y(), d.front.z()}},
                      {"lattice_contrast", d.lattice_contrast}};
  if (a.state) {
    j["bins"] = detail::kBins;
    j["sum"] = doubles_base64(a.state->folded.sum);
    j["count"] = doubles_base64(a.state->folded.count);
  }
  return j;
}

Analysis analysis_from_json(const nlohmann::json& j) {
  if (!j.is_object() || j.value("format", std::string()) != kFormat)
    throw InputError(fmt::format("not a mark analysis (its 'format' must be \"{}\")", kFormat));
  Analysis a;
  Detection& d = a.base;
  d.outcome = parse_outcome(field<std::string>(j, "outcome"));
  d.reason = field<std::string>(j, "reason");
  d.area_mm2 = field<double>(j, "area_mm2");
  d.unit_factor = field<double>(j, "unit_factor");
  d.samples = field<std::size_t>(j, "samples");
  d.scale = field<double>(j, "scale");
  d.lattice_contrast = field<double>(j, "lattice_contrast");
  const auto front = field<std::vector<double>>(j, "front");
  if (front.size() != 3) throw InputError("mark analysis: 'front' is not three numbers");
  d.front = Vec3(front[0], front[1], front[2]);
  if (!j.contains("sum")) {
    if (d.outcome == Outcome::found) throw InputError("mark analysis: a lattice was found but the folded tile is missing");
    return a;
  }
  if (field<int>(j, "bins") != detail::kBins) throw InputError(fmt::format("mark analysis: 'bins' must be {}", detail::kBins));
  auto st = std::make_shared<AnalysisState>();
  st->folded.sum = base64_doubles(j, "sum");
  st->folded.count = base64_doubles(j, "count");
  for (double c : st->folded.count)
    if (c < 0) throw InputError("mark analysis: a negative count");
  st->unit = d.unit_factor;
  st->scale = d.scale;
  st->area_mm2 = d.area_mm2;
  a.state = std::move(st);
  return a;
}

}  // namespace tracecast::watermark
