// Casting-sheet figures: how much silicone to mix for a cavity.
#pragma once

#include "tracecast/mesh/options.h"

namespace tracecast::print {

//! What the casting sheet is worked out with (options: silicone_option_table()).
struct SiliconeOptions {
  double density_g_ml = 1.08;    //!< platinum skin silicone
  double waste_fraction = 0.12;  //!< extra mixed for cups, sprue and vents
};

//! The casting sheet's options (recipe section "mold", beside the mold's own).
const OptionTable<SiliconeOptions>& silicone_option_table();

struct SiliconeMix {
  double cavity_ml = 0;      //!< cavity volume
  double density_g_ml = 0;   //!< silicone density used
  double waste_fraction = 0; //!< extra mixed for cups, sprue and vents
  double total_g = 0;        //!< part A + part B to weigh out
  double part_a_g = 0;
  double part_b_g = 0;
};

//! Grams of silicone for a cavity of `cavity_mm3`, parts mixed 1:1 by weight by default
//! (`ratio_a_per_b` = parts of A per part of B). Throws InputError for a negative volume, options
//! outside their table's ranges, or a non-positive ratio.
SiliconeMix silicone_to_mix(double cavity_mm3, const SiliconeOptions& options = {}, double ratio_a_per_b = 1.0);

}  // namespace tracecast::print
