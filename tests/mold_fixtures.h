// Mold options the tests share.
#pragma once

#include "tracecast/print/mold.h"

namespace tracecast::test {

//! No gutter, keys, sprue, vents or slots: the mold's void is the cavity alone.
inline print::MoldOptions bare_mold() {
  print::MoldOptions o;
  o.gutter_width_mm = 0;
  o.keys = 0;
  o.sprue_diameter_mm = 0;
  o.vent_diameter_mm = 0;
  o.pry_slot_mm = 0;
  o.bolt_diameter_mm = 0;
  return o;
}

}  // namespace tracecast::test
