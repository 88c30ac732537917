// Casting-sheet figures: how much silicone to mix for a cavity.
#pragma once

namespace tracecast::print {

struct SiliconeMix {
  double cavity_ml = 0;      //!< cavity volume
  double density_g_ml = 0;   //!< silicone density used
  double waste_fraction = 0; //!< extra mixed for cups, sprue and vents
  double total_g = 0;        //!< part A + part B to weigh out
  double part_a_g = 0;
  double part_b_g = 0;
};

//! Grams of silicone for a cavity of `cavity_mm3`. Defaults: platinum skin silicone 1.08 g/ml,
//! 12 % waste, parts mixed 1:1 by weight (`ratio_a_per_b` = parts of A per part of B).
//! Throws InputError for a negative volume, a density outside 0.5–3 g/ml, waste outside 0–1,
//! or a non-positive ratio.
SiliconeMix silicone_to_mix(double cavity_mm3, double density_g_ml = 1.08, double waste_fraction = 0.12,
                            double ratio_a_per_b = 1.0);

}  // namespace tracecast::print
