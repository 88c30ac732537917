// The ear prosthesis's option table (tracecast/mesh/options.h).
#include "tracecast/sculpt/ear.h"

namespace tracecast::sculpt {

namespace {

OptionTable<EarOptions> make_ear_table() {
  using S = EarOptions;
  OptionTable<S> t("ear");
  t.choice("side", &S::side, {"auto", "left", "right"}, "the side that lacks the ear, the wearer's (auto: where the mirror image stands out)")
      .number("protrusion_mm", &S::protrusion_mm, "mm", 0.2, 20, "how far the mirrored head must stand out of this one to count as ear")
      .number("reach_mm", &S::reach_mm, "mm", 1, 20, "how far from the mirrored ear's surface its solid is taken (over half the ear's thickness)")
      .number("edge_mm", &S::edge_mm, "mm", 0.1, 5, "the margin's thickness where it ends on the skin (at least the resolution)")
      .number("resolution_mm", &S::resolution_mm, "mm", 0.1, 3, "grid step of the solid's surface");
  t.rule([](const S& s) {
    return s.edge_mm >= s.resolution_mm ? std::string()
                                        : "\"edge_mm\" = " + std::to_string(s.edge_mm) + " must be at least the resolution (" +
                                              std::to_string(s.resolution_mm) + " mm): a thinner edge breaks into splinters on the grid";
  });
  return t;
}

}  // namespace

const OptionTable<EarOptions>& ear_option_table() {
  static const OptionTable<EarOptions> t = make_ear_table();
  return t;
}

}  // namespace tracecast::sculpt
