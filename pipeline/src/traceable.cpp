#include "tracecast/pipeline/traceable.h"

#include <fmt/format.h>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/print/mold_stages.h"
#include "tracecast/version.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::pipeline {

namespace {

ledger::SigningKey read_signer(const Production& p) {
  std::vector<std::string> missing;
  if (p.ledger.empty()) missing.push_back("the ledger");
  if (p.signing_key.empty()) missing.push_back("the workshop's signing key");
  if (p.mark_key.empty()) missing.push_back("the marking key");
  if (p.run == 0) missing.push_back("the run");
  if (p.subject.empty()) missing.push_back("the subject");
  if (!missing.empty())
    throw InputError(fmt::format("a mold is made for a run and a consenting subject, stamped and recorded in the ledger; missing: {}",
                                 fmt::join(missing, ", ")));
  if (!std::filesystem::exists(p.ledger)) throw InputError(p.ledger, "no such ledger (create one with tracecast ledger init)");
  return ledger::read_signing_key(p.signing_key);
}

}  // namespace

Workshop::Workshop(const Production& p)
    : production_(p), signer_(read_signer(p)), book_(ledger::Ledger::open(p.ledger, &signer_)), mark_key_(watermark::read_key(p.mark_key)) {
  book_.check_production(p.run, p.subject, "", p.likeness);
}

nlohmann::json mold_options_json(const print::MoldOptions& o) {
  nlohmann::json j = print::mold_option_table().to_json(o);
  j["printer_profile"] = print::printer_json(o.printer);
  return j;
}

TraceableMold make_traceable_mold(Workshop& shop, const Mesh& appliance, const Mesh& face, const print::MoldOptions& options,
                                  const nlohmann::json& inputs,
                                  const std::function<std::vector<std::string>(const print::Mold&)>& write,
                                  const std::function<void(const std::string&)>& stage, const FaceAnalysis* face_analysis) {
  auto say = [&](const char* s) {
    if (stage) stage(s);
  };
  // The refusals before the ledger records anything: the inputs, then the whole plan (a printer
  // too small for any sectioning refuses here), made on the unstamped appliance and built on the
  // stamped one; the inspection is carried to it.
  say("planning");
  const print::stages::Inspection unstamped = print::stages::inspect_inputs(appliance, face, options);
  print::stages::MoldPlan plan = print::stages::plan_mold(appliance, face, options, face_analysis, &unstamped);
  const Production& p = shop.production();
  // The production mark: the stamp's defaults, tuned for reading back from a scan of a cast.
  const watermark::StampOptions mark_options;
  const nlohmann::json details = {{"software", kSoftware},
                                  {"command", "mold"},
                                  {"inputs", inputs},
                                  {"parameters", mold_options_json(options)},
                                  {"mark_parameters", watermark::stamp_option_table().to_json(mark_options)},
                                  {"printer", options.printer.name}};
  // One transaction: the identifier is allocated and the piece recorded before the files exist
  // (they carry the identifier); their hashes follow once they are written.
  const ledger::Piece piece = shop.book().record_piece(p.run, p.subject, shop.mark_key().id(), details, "", p.likeness);
  TraceableMold out;
  out.id = piece.id;
  out.entry = piece.seq;
  try {
    say("stamping");
    // The mark's own figures (displacement, area, tiles) go in the report; its two-way distance to
    // the unmarked surface, which no report of a mold carries, is left to `tracecast mark`.
    watermark::Stamped st = watermark::apply_stamp(*watermark::plan_stamp(appliance, mark_options), piece.id, shop.mark_key(), false);
    out.stamp = st.report;
    out.marked = std::move(st.mesh);
    say("designing");
    const print::stages::Inspection inspection = print::stages::carry_inspection(unstamped, out.marked, st.face_origin);
    print::stages::carry_plan(plan, st.face_origin);
    out.mold = print::stages::build_mold(std::move(plan), out.marked, face, options, &inspection);
    for (const std::string& w : out.stamp.warnings) out.mold.report.warnings.push_back(w);
    say("writing");
    out.outputs = nlohmann::json::object();
    for (const std::string& f : write(out.mold)) out.outputs[f] = ledger::file_sha256(f);
    shop.book().record_outputs(piece.id, out.outputs);
  } catch (const std::exception& e) {
    // The identifier stays allocated (never issued twice); the ledger says no piece came of it.
    try {
      shop.book().release_piece(piece.id, false, {{"production", "failed"}, {"error", e.what()}}, "tracecast",
                                "production failed; no mold was released");
    } catch (const std::exception&) {
    }
    throw;
  }
  return out;
}

nlohmann::json mold_report_json(const print::Mold& mold, const print::MoldOptions& o, const print::SiliconeMix& mix) {
  using nlohmann::json;
  const print::MoldReport& r = mold.report;
  json undercuts = json::array(), parts = json::array(), keys = json::array(), vents = json::array();
  for (const auto& u : r.undercuts)
    undercuts.push_back({{"surface", u.surface}, {"centroid_mm", vec_json(u.centroid)}, {"area_mm2", u.area_mm2}, {"depth_mm", u.depth_mm}, {"rigid", u.rigid}});
  for (std::size_t k = 0; k < r.parts.size(); ++k) {
    json part = r.parts[k];
    if (k < r.print_from_mold.size()) {  // rows of [R | t]: file = R · mold frame + t
      const Eigen::Matrix<double, 3, 4> m = r.print_from_mold[k].matrix().topRows<3>();
      part["from_mold_frame"] = {vec_json(m.row(0).head<3>().transpose()), vec_json(m.row(1).head<3>().transpose()),
                                 vec_json(m.row(2).head<3>().transpose()), vec_json(m.col(3))};
    }
    parts.push_back(part);
  }
  for (const Vec3& k : r.key_centres) keys.push_back(vec_json(k));
  json part_sections = json::array();
  for (const print::PartSections& ps : r.part_sections) {
    json j = ps.sections;
    j["part"] = ps.part;
    j["frame"] = {vec_json(ps.frame.row(0).transpose()), vec_json(ps.frame.row(1).transpose()), vec_json(ps.frame.row(2).transpose())};
    part_sections.push_back(j);
  }
  for (const Vec3& v : r.vent_bottoms) vents.push_back(vec_json(v));
  return {{"printer", o.printer.name},
          {"layout", r.layout},
          {"grid_mm", r.grid_mm},
          {"open_pour", r.open_pour},
          {"pulls", r.pulls},
          {"pull", {{"direction", vec_json(r.pull)}, {"searched", r.pull_searched}, {"undercut_area_mm2", r.undercut_area_mm2},
                    {"frontal_undercut_area_mm2", r.undercut_area_frontal_mm2}}},
          {"undercuts", undercuts},
          {"options", mold_options_json(o)},
          {"mold_frame", {{"x", vec_json(r.frame.row(0).transpose())}, {"y", vec_json(r.frame.row(1).transpose())},
                          {"z", vec_json(r.frame.row(2).transpose())}, {"box_min_mm", vec_json(r.box_min)}, {"box_max_mm", vec_json(r.box_max)},
                          {"key_centres_mm", keys}, {"key_radii_mm", r.key_radii_mm}, {"sprue_bottom_mm", vec_json(r.sprue_bottom)}, {"sprue_bend_mm", vec_json(r.sprue_bend)}, {"vent_bottoms_mm", vents}}},
          {"casting", {{"cavity_ml", r.appliance_ml}, {"gutter_ml", r.gutter_ml}, {"void_ml", r.void_ml},
                       {"open_cavity_mm2", r.open_cavity_mm2},
                       {"open_cavity_max_mm", r.open_cavity_max_mm},
                       {"density_g_ml", mix.density_g_ml},
                       {"waste_fraction", mix.waste_fraction}, {"silicone_g", mix.total_g}, {"part_a_g", mix.part_a_g}, {"part_b_g", mix.part_b_g}}},
          {"sections", r.sections},
          {"part_sections", part_sections},
          {"bolts", r.bolts},
          {"parts", parts},
          {"warnings", r.warnings},
          {"timings_s", timings_json(r.timings)}};
}

nlohmann::json mark_json(const TraceableMold& made, const Workshop& shop) {
  nlohmann::json j = made.stamp;
  j.update({{"ledger", shop.production().ledger.string()},
            {"workshop_key_fingerprint", ledger::key_fingerprint(shop.book().public_key_hex())},
            {"ledger_entry", made.entry},
            {"run", shop.production().run},
            {"subject", shop.production().subject},
            {"likeness_subject", shop.production().likeness.empty() ? nlohmann::json() : nlohmann::json(shop.production().likeness)}});
  return j;
}

}  // namespace tracecast::pipeline
