// The option tables of the pieces sculpted from a head (tracecast/mesh/options.h): the ear
// prosthesis and the full-head mask.
#include "tracecast/sculpt/ear.h"
#include "tracecast/sculpt/mask.h"

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

OptionTable<MaskOptions> make_mask_table() {
  using S = MaskOptions;
  OptionTable<S> t("mask");
  t.number("thickness_mm", &S::thickness_mm, "mm", 0.5, 20, "without a likeness: the wearer's head offset by this much")
      .number("min_thickness_mm", &S::min_thickness_mm, "mm", 0.3, 10, "nowhere thinner: a likeness closer to the wearer is pushed out")
      .number("fit_mm", &S::fit_mm, "mm", -5, 5, "the inner surface this far outside the wearer's head (negative: a tighter fit)")
      .number("eye_margin_mm", &S::eye_margin_mm, "mm", 0, 30, "eye openings this much larger than the eye")
      .number("nostril_margin_mm", &S::nostril_margin_mm, "mm", 0, 10, "nostril openings this much larger than the nostril")
      .number("mouth_margin_mm", &S::mouth_margin_mm, "mm", 0, 30, "mouth opening this much larger than the mouth")
      .number("neck_mm", &S::neck_mm, "mm", 0, 200, "the neck edge this far below the chin")
      .choice("neck_edge", &S::neck_edge, {"square", "rolled"},
              "how the neck edge ends: cut square through the wall, or in a round lip (it resists tearing when the mask is pulled "
              "over the head)")
      .number("neck_lip_mm", &S::neck_lip_mm, "mm", 2, 15, "rolled: the lip's diameter; its inside lies on the fit surface, it bulges outwards")
      .number("resolution_mm", &S::resolution_mm, "mm", 0.3, 5, "grid step of the mask's surfaces");
  t.rule([](const S& s) {
    return s.resolution_mm <= s.min_thickness_mm / 1.5 + 1e-9
               ? std::string()
               : "\"resolution_mm\" = " + std::to_string(s.resolution_mm) + " must be at most two thirds of the minimum thickness (" +
                     std::to_string(s.min_thickness_mm) + " mm): a coarser grid misses parts of the shell and opens holes in it";
  });
  t.rule([](const S& s) {
    return s.min_thickness_mm <= s.thickness_mm ? std::string()
                                                : "\"min_thickness_mm\" = " + std::to_string(s.min_thickness_mm) + " must not exceed the thickness (" +
                                                      std::to_string(s.thickness_mm) + " mm)";
  });
  return t;
}

}  // namespace

const OptionTable<MaskOptions>& mask_option_table() {
  static const OptionTable<MaskOptions> t = make_mask_table();
  return t;
}

const OptionTable<EarOptions>& ear_option_table() {
  static const OptionTable<EarOptions> t = make_ear_table();
  return t;
}

}  // namespace tracecast::sculpt
